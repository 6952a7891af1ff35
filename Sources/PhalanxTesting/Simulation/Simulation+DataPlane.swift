import PhalanxElastic
import PhalanxTCP

/// The simulated data plane: every step is an all-reduce that completes only when every ring
/// member entered it and stays reachable; a state transfer copies the source's state to every
/// member. Failures show as the real transport shows them: a closed connection at once for a
/// crashed neighbour, the failure timeout otherwise.
extension Simulation {
    /// The fault-free run's digest of the weights after `step` steps.
    func digest(step: Int) -> UInt64 {
        canonical.indices.contains(step) ? canonical[step] : Self.canonicalDigests(through: step)[step]
    }

    /// The fault-free run's digests of steps 0 ... `last`.
    static func canonicalDigests(through last: Int) -> [UInt64] {
        var digests: [UInt64] = [0x0123_4567_89AB_CDEF]
        for index in 0..<max(0, last) { digests.append(mix(digests[index], index + 1)) }
        return digests
    }

    static func mix(_ value: UInt64, _ step: Int) -> UInt64 {
        var random = SimulationRandom(seed: value ^ UInt64(step) &* 0x9E37_79B9)
        return random.next()
    }

    mutating func startStep(_ index: Int, step: Int) {
        let process = processes[index]
        if process.state.step != step || process.state.damaged {
            violation("p\(index) trains from step \(step) but holds \(process.state.holding)")
        }
        begin(index, .step(epoch: process.ringEpoch, step: step), key: CollectiveKey(epoch: process.ringEpoch, step: step), source: nil)
    }

    mutating func startSync(_ index: Int, source: Int) {
        let process = processes[index]
        let sourceIndex = process.core.membership.members.first { $0.id == source }.flatMap { self.index(of: $0) }
        begin(index, .sync(epoch: process.ringEpoch, source: source), key: CollectiveKey(epoch: process.ringEpoch, step: -1), source: sourceIndex)
    }

    /// The process enters a collective (creating it when it is the first).
    mutating func begin(_ index: Int, _ operation: DataOperation, key: CollectiveKey, source: Int?) {
        processes[index].token += 1
        processes[index].operation = operation
        let token = processes[index].token
        var collective = collectives[key] ?? Collective(participants: processes[index].ring, source: source)
        collective.entered[index] = processes[index].state
        collectives[key] = collective
        schedule(.deadline(index, token: token), after: Self.failureTimeout)
        if !collective.completing, collective.left.isEmpty, collective.participants.allSatisfy({ collective.entered[$0] != nil }) {
            collectives[key]?.completing = true
            let duration = key.step < 0 ? random.milliseconds(10...60) : random.milliseconds(8...40)
            schedule(.complete(key), after: duration * 1000)
        }
    }

    /// Whether a participant can still play its part.
    func healthy(_ index: Int, in collective: Collective) -> Bool {
        let process = processes[index]
        return process.alive && !process.frozen && collective.entered[index] != nil && !collective.left.contains(index)
    }

    /// The participants a member blames when the collective fails: those dead, frozen, gone
    /// or cut off from it.
    ///
    /// Like a real transport, it sometimes blames a healthy neighbour too (one in ten failures).
    mutating func culprits(for index: Int, in collective: Collective) -> [Int] {
        let members = processes[index].core.membership.members
        var blamed = collective.participants.filter { other in
            other != index && (!healthy(other, in: collective) || isBlocked(from: other, to: index) || isBlocked(from: index, to: other))
        }
        if random.chance(0.1), let innocent = pick(collective.participants.filter { $0 != index && !blamed.contains($0) }) {
            blamed.append(innocent)
        }
        return blamed.compactMap { other in members.first { $0.port == processes[other].address.port }?.id }
    }

    mutating func complete(_ key: CollectiveKey) {
        guard let collective = collectives.removeValue(forKey: key) else { return }
        let ring = collective.participants
        let linksUp = ring.indices.allSatisfy { position in
            let a = ring[position], b = ring[(position + 1) % ring.count]
            return !isBlocked(from: a, to: b) && !isBlocked(from: b, to: a)
        }
        let allHealthy = ring.allSatisfy { healthy($0, in: collective) } && linksUp
        for index in ring where processes[index].alive && !processes[index].frozen && healthy(index, in: collective) {
            let token = processes[index].token
            if key.step >= 0 {
                if allHealthy || random.chance(0.25) {
                    let inputs = ring.compactMap { collective.entered[$0] }
                    schedule(.data(index, token: token, .committed(reduce(inputs, step: key.step))), after: random.milliseconds(0...2) * 1000)
                } else {
                    let crashedNeighbour = ring.contains { !processes[$0].alive }
                    let delay = crashedNeighbour ? random.milliseconds(2...8) * 1000 : random.milliseconds(1500...2000) * 1000
                    schedule(.data(index, token: token, .stepFailed(suspects: culprits(for: index, in: collective))), after: delay)
                }
            } else {
                finishTransfer(index, token: token, collective: collective, success: allHealthy)
            }
        }
    }

    /// The all-reduce's result: the fault-free step when every member brought the same intact
    /// state of that step, garbage otherwise.
    func reduce(_ inputs: [SimulatedState], step: Int) -> SimulatedState {
        let first = inputs.first ?? SimulatedState(step: step, digest: 0)
        let agree = inputs.allSatisfy { $0 == first && $0.step == step && !$0.damaged }
        let digest = agree ? Self.mix(first.digest, step + 1) : Self.mix(inputs.reduce(0xBAD) { $0 ^ $1.digest &* 31 }, step + 1)
        return SimulatedState(step: step + 1, digest: digest)
    }

    mutating func finishTransfer(_ index: Int, token: Int, collective: Collective, success: Bool) {
        let sourceState = collective.source.flatMap { collective.entered[$0] }
        let mine = processes[index].state
        let delay = random.milliseconds(0...2) * 1000
        if success, let sourceState {
            schedule(.data(index, token: token, .transferred(sourceState)), after: delay)
            return
        }
        let outcome = index == collective.source ? 0 : random.below(5)
        switch outcome {
        case 4 where sourceState != nil:
            schedule(.data(index, token: token, .transferred(sourceState ?? mine)), after: delay)
        default:
            let partial = outcome >= 2
            let after = partial ? overwrittenPartly(mine, by: sourceState) : mine
            let crashedNeighbour = collective.participants.contains { !processes[$0].alive }
            let wait = crashedNeighbour ? delay + 3000 : random.milliseconds(1500...2000) * 1000
            schedule(.data(index, token: token, .transferFailed(after, suspects: culprits(for: index, in: collective))), after: wait)
        }
    }

    /// A receiver's state after part of the source's state was written into it: unchanged
    /// bytes when it already held the same state; under the in-place policy a damaged state
    /// otherwise; its own commit again (restored from the snapshot) under the snapshot policy.
    func overwrittenPartly(_ mine: SimulatedState, by source: SimulatedState?) -> SimulatedState {
        guard options.inPlace, let source, source != mine else { return mine }
        return SimulatedState(step: mine.step, digest: mine.digest ^ 0xDA3A_6ED, damaged: true)
    }

    /// `.stopTraining`: the process leaves its collective; a receiver leaving a transfer may
    /// have been written into already.
    mutating func stopData(_ index: Int) {
        let token = processes[index].token + 1
        processes[index].token = token
        var syncReceiver = false
        if let operation = processes[index].operation {
            let key: CollectiveKey
            var source: SimulatedState?
            switch operation {
            case let .step(epoch, step): key = CollectiveKey(epoch: epoch, step: step)
            case let .sync(epoch, _):
                key = CollectiveKey(epoch: epoch, step: -1)
                source = collectives[key].flatMap { collective in collective.source.flatMap { collective.entered[$0] } }
                syncReceiver = collectives[key]?.source != index
                if let source, syncReceiver, random.chance(0.4) {
                    processes[index].state = overwrittenPartly(processes[index].state, by: source)
                }
            }
            collectives[key]?.left.insert(index)
        }
        processes[index].operation = nil
        schedule(.data(index, token: token, .stopped(syncReceiver: syncReceiver)), after: random.milliseconds(0...3) * 1000)
    }

    /// The collective an operation takes part in.
    static func key(_ operation: DataOperation) -> CollectiveKey {
        switch operation {
        case let .step(epoch, step): CollectiveKey(epoch: epoch, step: step)
        case let .sync(epoch, _): CollectiveKey(epoch: epoch, step: -1)
        }
    }

    /// A collective made no progress for the failure timeout.
    mutating func deadlinePassed(_ index: Int) {
        guard let operation = processes[index].operation else { return }
        let key = Self.key(operation)
        // A collective that is completing delivers this process's result itself; one that is
        // gone completed while this process was frozen, without it.
        if let collective = collectives[key], collective.completing { return }
        let suspects = collectives[key].map { culprits(for: index, in: $0) } ?? []
        if key.step >= 0 {
            apply(.stepFailed(suspects: suspects), to: index)
        } else {
            apply(.transferFailed(processes[index].state, suspects: suspects), to: index)
        }
    }

    /// A data-plane result reaches the process: its state changes, its core hears of it, and
    /// a training process goes on with the next step.
    mutating func apply(_ result: DataResult, to index: Int) {
        var wasSource = true
        if case let .sync(_, source) = processes[index].operation { wasSource = processes[index].core.id == source }
        // Out of its collective: the others cannot complete it with this process any more.
        if let operation = processes[index].operation { collectives[Self.key(operation)]?.left.insert(index) }
        processes[index].operation = nil
        processes[index].token += 1
        switch result {
        case let .committed(state):
            processes[index].state = state
            if state.digest != digest(step: state.step) {
                violation("member \(processes[index].core.id ?? -1) (p\(index)) committed step \(state.step) with weights that differ from the fault-free run")
            }
            trace { "p\(index) committed step \(state.step)" }
            report.stepsCommitted += 1
            feed(index, .stepCommitted(step: state.step))
            let core = processes[index].core
            if core.phase == .training, !core.isWaitingForDataPlane, core.holding.step == state.step, processes[index].alive {
                startStep(index, step: state.step)
            }
        case let .stepFailed(suspects):
            trace { "p\(index) step failed, suspects \(suspects)" }
            feed(index, .stepFailed(suspects: suspects, reason: "collective failed"))
        case let .transferred(state):
            processes[index].state = state
            trace { "p\(index) received the state at step \(state.step)" }
            feed(index, .transferFinished(holding: state.holding))
        case let .transferFailed(state, suspects):
            processes[index].state = state
            trace { "p\(index) transfer failed, holds \(state.holding), suspects \(suspects)" }
            feed(index, .transferFailed(holding: reported(state, receiver: !wasSource), suspects: suspects, reason: "transfer failed"))
        case let .stopped(syncReceiver):
            let state = processes[index].state
            feed(index, .trainingStopped(holding: reported(state, receiver: syncReceiver)))
        }
    }

    /// What the process tells its core it holds (the sync mutation reintroduces the bug of
    /// calling every receiver of a failed transfer damaged).
    func reported(_ state: SimulatedState, receiver: Bool) -> Holding {
        if options.mutation == .syncDamagesReceivers, receiver { return Holding(step: state.step, intact: false) }
        return state.holding
    }
}
