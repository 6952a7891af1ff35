import Foundation
import PhalanxElastic
import PhalanxTCP

/// The nemesis: kills, freezes, partitions, lossy periods, newcomers and replacements, drawn
/// from the seed during the fault window; everything heals when the window ends.
extension Simulation {
    /// At most this many processes are ever started in one run (bounds restarts and joins).
    static let processLimit = 40

    mutating func nextFaultDelay() -> Int64 {
        let mean = Double(Self.microseconds(options.meanFaultInterval))
        return Int64(-log(max(random.unit(), 1e-9)) * mean)
    }

    func alive(excludingFrozen: Bool = false) -> [Int] {
        processes.indices.filter { processes[$0].alive && !(excludingFrozen && processes[$0].frozen) }
    }

    /// The processes the nemesis may kill: any live one, or (preserving the quorum) those whose
    /// death leaves a quorum of the newest membership alive.
    func killable() -> [Int] {
        guard options.preserveQuorum else { return alive() }
        let newest = decided.max { $0.key < $1.key }?.value.membership ?? initialMembership
        let living = newest.members.compactMap { index(of: $0) }.filter { $0 >= 0 && processes[$0].alive }
        return alive().filter { candidate in
            !living.contains(candidate) || isQuorum(alive: living.count - 1, of: newest.members.count)
        }
    }

    mutating func pick(_ candidates: [Int]) -> Int? {
        candidates.isEmpty ? nil : candidates[Int(random.below(UInt64(candidates.count)))]
    }

    mutating func injectFault() {
        guard !options.faults.isEmpty else { return }
        let fault = options.faults[Int(random.below(UInt64(options.faults.count)))]
        report.faults[fault, default: 0] += 1
        switch fault {
        case .crash:
            if let victim = pick(killable()) { crash(victim) }
        case .doubleCrash:
            if let first = pick(killable()) {
                crash(first)
                if let second = pick(killable()) { crash(second) }
            }
        case .freeze:
            guard let victim = pick(alive(excludingFrozen: true)) else { return }
            processes[victim].frozen = true
            trace { "nemesis freezes p\(victim)" }
            schedule(.thaw(victim), after: random.milliseconds(300...4000) * 1000)
        case .partition:
            var nodes = alive() + (options.witness ? [Self.witnessIndex] : [])
            guard nodes.count >= 2 else { return }
            for position in stride(from: nodes.count - 1, to: 0, by: -1) {
                nodes.swapAt(position, Int(random.below(UInt64(position + 1))))
            }
            let cut = 1 + Int(random.below(UInt64(nodes.count - 1)))
            let left = Array(nodes[..<cut]), right = Array(nodes[cut...])
            var links: [Link] = []
            for a in left { for b in right { links += [Link(from: a, to: b), Link(from: b, to: a)] } }
            trace { "nemesis partitions \(left) | \(right)" }
            block(links, for: random.milliseconds(500...5000))
        case .oneWayPartition:
            let nodes = alive() + (options.witness ? [Self.witnessIndex] : [])
            guard let from = pick(nodes), let to = pick(nodes.filter { $0 != from }) else { return }
            trace { "nemesis cuts \(from) → \(to)" }
            block([Link(from: from, to: to)], for: random.milliseconds(500...4000))
        case .loss:
            lossUntil = now + random.milliseconds(300...2000) * 1000
            trace { "nemesis drops messages until \(Double(lossUntil) / 1e6) s" }
        case .join:
            spawn()
        }
    }

    mutating func block(_ links: [Link], for milliseconds: Int64) {
        let id = partitions.count + 1
        partitions[id] = links
        for link in links { blocked[link, default: 0] += 1 }
        schedule(.heal(partition: id), after: milliseconds * 1000)
    }

    mutating func heal(_ id: Int) {
        guard let links = partitions[id] else { return }
        partitions[id] = []
        for link in links {
            blocked[link, default: 1] -= 1
            if blocked[link] == 0 { blocked[link] = nil }
        }
    }

    /// SIGKILL: the process is gone; its ring neighbours see their connections close.
    mutating func crash(_ victim: Int) {
        processes[victim].alive = false
        processes[victim].held = []
        trace { "nemesis kills p\(victim)" }
        // In a fixed order: a run must draw the same random numbers every time it is replayed.
        let affected = collectives.filter { $0.value.participants.contains(victim) && !$0.value.completing }
            .sorted { ($0.key.epoch, $0.key.step) < ($1.key.epoch, $1.key.step) }
        for (key, collective) in affected {
            let ring = collective.participants
            guard let position = ring.firstIndex(of: victim), ring.count > 1 else { continue }
            let right = ring[(position + 1) % ring.count], left = ring[(position + ring.count - 1) % ring.count]
            let neighbours = right == left ? [right] : [right, left]
            for neighbour in neighbours where neighbour != victim && processes[neighbour].alive && processes[neighbour].operation.map(Self.key) == key {
                let token = processes[neighbour].token
                let suspects = culprits(for: neighbour, in: collective)
                let result: DataResult = key.step >= 0
                    ? .stepFailed(suspects: suspects)
                    : .transferFailed(
                        collective.source == victim && random.chance(0.5)
                            ? overwrittenPartly(processes[neighbour].state, by: collective.entered[victim]) : processes[neighbour].state,
                        suspects: suspects)
                schedule(.data(neighbour, token: token, result), after: random.milliseconds(2...8) * 1000)
            }
        }
        if !faultsOver, random.chance(options.restartProbability) {
            schedule(.spawn, after: random.milliseconds(100...1000) * 1000)
        }
    }

    mutating func thaw(_ index: Int) {
        guard processes[index].frozen else { return }
        processes[index].frozen = false
        trace { "nemesis thaws p\(index)" }
        let held = processes[index].held
        processes[index].held = []
        for event in held { schedule(event, after: 0) }
    }

    /// A new process (a replacement started by the launcher, or an added one) asks to join
    /// through the published directory.
    mutating func spawn() {
        guard processes.count < Self.processLimit else { return }
        let index = processes.count
        let address = MemberAddress(id: MemberNode.newcomerID, host: "sim", port: Self.basePort + UInt16(index))
        var process = SimulatedProcess(
            index: index, address: address, core: MembershipCore(config: config(for: address)),
            // A newcomer holds nothing of the job until a transfer gives it the state.
            state: SimulatedState(step: 0, digest: 0xF4E5, damaged: true))
        let actions = process.core.join(directory: directory)
        processes.append(process)
        report.joiners += 1
        trace { "launcher starts p\(index) as a newcomer" }
        perform(actions, for: index)
    }

    mutating func endFaults() {
        faultsOver = true
        trace { "faults stop: partitions heal, frozen processes thaw" }
        for id in partitions.keys.sorted() { heal(id) }
        lossUntil = -1
        for index in processes.indices where processes[index].frozen { thaw(index) }
    }
}
