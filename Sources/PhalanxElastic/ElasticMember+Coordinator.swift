import Foundation
import PhalanxCheckpoint
import PhalanxTCP

extension ElasticMember {
    /// The coordinator's side of a change: gathers the reports of the epoch's members (and any
    /// join requests) until everyone not suspected has reported or the agreement timeout
    /// passes, waits (bounded) for joiners when below the minimum, then decides and answers.
    ///
    /// Safety before liveness: a coordinator that reaches fewer than half of the epoch's members,
    /// or exactly half while a member it would declare lost still answers (an even split, or
    /// this member was hung while the others moved on), steps down as evicted instead of
    /// deciding. A report from a newer epoch carries that epoch's decision, which is adopted.
    func coordinate(_ current: Membership, suspects: inout Set<Int>, committed: Int) throws -> Agreement {
        var reports: [Int: Int] = [id: committed]
        var waiting: [Int: ControlRequest] = [:]
        var joiners: [(ControlRequest, MemberAddress)] = []
        let gatherDeadline = ContinuousClock.now + options.agreementTimeout
        var joinDeadline: ContinuousClock.Instant?
        var nextAlert = ContinuousClock.now + .milliseconds(100)
        var adopted: Decision?
        var answers: [Answer] = []
        lock.lock()
        while adopted == nil {
            let batch = pending
            pending = []
            for (request, message) in batch {
                switch message.kind {
                case .recover where message.epoch == current.epoch && current.position(of: message.sender) != nil:
                    reports[message.sender] = message.committedStep ?? 0
                    suspects.formUnion(message.suspects ?? [])
                    if let previous = waiting.updateValue(request, forKey: message.sender) { answers.append((previous, nil)) }
                case .recover where message.epoch < current.epoch:
                    answers.append(answerLate(request, message))
                case .recover:
                    // The sender holds a newer decision (a coordinator died while answering):
                    // take it, and answer it as a late report afterwards.
                    if let decision = message.decision, decision.membership.epoch == message.epoch, decision.membership.epoch > current.epoch {
                        adopted = decision
                        pending.append((request, message))
                    } else { answers.append((request, nil)) }
                case .join:
                    guard let address = message.address else { answers.append((request, nil)); continue }
                    // The newest request from an address replaces an older one (a retry).
                    if let index = joiners.firstIndex(where: { $0.1.host == address.host && $0.1.port == address.port }) {
                        answers.append((joiners[index].0, nil))
                        joiners.remove(at: index)
                    }
                    joiners.append((request, address))
                default:
                    answers.append((request, nil))
                }
            }
            suspects.subtract(reports.keys)
            let missing = current.members.filter { reports[$0.id] == nil && !suspects.contains($0.id) }
            let now = ContinuousClock.now
            if missing.isEmpty || now >= gatherDeadline {
                if reports.count + joiners.count >= options.minimumMembers || reports.count * 2 < current.members.count { break }
                if joinDeadline == nil {
                    joinDeadline = now + options.joinWaitTimeout
                    logger.warning("member \(id): \(reports.count) member(s) left, below the minimum of \(options.minimumMembers); waiting up to \(options.joinWaitTimeout) for joiners")
                }
                if let joinDeadline, now >= joinDeadline { break }
            }
            if now >= nextAlert, !missing.isEmpty {
                // An alert is one datagram: repeat it for whoever has not reported yet.
                heartbeat.alert(id: id, epoch: current.epoch, to: missing)
                nextAlert = now + .milliseconds(100)
            }
            if !answers.isEmpty {
                lock.unlock()
                send(answers)
                answers = []
                lock.lock()
                continue
            }
            _ = lock.wait(until: Date(timeIntervalSinceNow: 0.01))
        }
        lock.unlock()
        send(answers)

        if let adopted {
            logger.info("member \(id) adopts the decision for epoch \(adopted.membership.epoch) held by another member")
            send(waiting.map { (request: $0.value, bytes: nil) })
            return .decided(adopted)
        }
        let reached = current.members.filter { reports[$0.id] != nil }
        let lost = current.members.filter { reports[$0.id] == nil }
        let stepDown = reached.count * 2 < current.members.count || (reached.count * 2 == current.members.count && anyAnswers(lost, epoch: current.epoch))
        if stepDown {
            send(waiting.map { (request: $0.value, bytes: nil) } + joiners.map { (request: $0.0, bytes: nil) })
            throw ElasticError.evicted(
                id: id, epoch: current.epoch,
                reason: "only \(reached.count) of \(current.members.count) members answered and the others are alive or have moved on; this member will not decide for a minority")
        }
        let redo = reports.values.max() ?? committed
        guard redo >= 0 else { throw ElasticError.recoveryFailed(step: committed, reason: "no member holds an intact committed state") }
        let source = reached.first { reports[$0.id] == redo }?.id ?? id
        // Members are answered in ascending id order, then joiners: if this coordinator dies
        // while answering, the next one in line already holds the decision and passes it on.
        let orderedWaiting = waiting.sorted { $0.key < $1.key }.map(\.value)
        if reached.count + joiners.count < options.minimumMembers {
            var stop = ControlMessage(kind: .stop, epoch: current.epoch, sender: source)
            stop.memberCount = reached.count
            stop.reason = "below the minimum of \(options.minimumMembers) members"
            var refuse = ControlMessage(kind: .refuse, epoch: current.epoch, sender: id)
            refuse.reason = "the job is stopping"
            send(orderedWaiting.map { ($0, stop.encoded()) } + joiners.map { ($0.0, refuse.encoded()) })
            return .stop(source: source, members: reached.count)
        }
        var members = reached
        var nextID = current.nextID
        var admitted: [(ControlRequest, MemberAddress)] = []
        var refusals: [Answer] = []
        for (request, address) in joiners {
            guard members.count < options.maximumMembers else {
                var refuse = ControlMessage(kind: .refuse, epoch: current.epoch, sender: id)
                refuse.reason = "the job already has the maximum of \(options.maximumMembers) members"
                refusals.append((request, refuse.encoded()))
                continue
            }
            let assigned = MemberAddress(id: nextID, host: address.host, port: address.port)
            nextID += 1
            members.append(assigned)
            admitted.append((request, assigned))
        }
        let lostIDs = lost.map(\.id)
        let decision = Decision(
            membership: Membership(epoch: current.epoch + 1, members: members, nextID: nextID),
            redoStep: redo, source: source,
            syncRequired: !admitted.isEmpty || reports.values.contains { $0 != redo },
            lost: lostIDs, joined: admitted.map(\.1.id),
            reason: lostIDs.isEmpty ? (admitted.isEmpty ? "renewal" : "join") : "members \(lostIDs) lost")
        var answer = ControlMessage(kind: .decision, epoch: decision.membership.epoch, sender: id)
        answer.decision = decision
        let welcomes: [Answer] = admitted.map { request, assigned in
            var welcome = answer
            welcome.address = assigned
            return (request, welcome.encoded())
        }
        lock.lock()
        lastDecision = decision
        lock.unlock()
        send(orderedWaiting.map { ($0, answer.encoded()) } + welcomes + refusals)
        logger.info("member \(id) decided epoch \(decision.membership.epoch): members \(decision.membership.ids), redo step \(redo) from member \(source)")
        return .decided(decision)
    }

    /// Whether any of `members` answers a probe at `epoch` or later within the handshake bound
    /// (they are alive: not ours to declare lost). Probed in parallel.
    func anyAnswers(_ members: [MemberAddress], epoch current: UInt64) -> Bool {
        let alive = ProbeResults()
        let group = DispatchGroup()
        let probe = ControlMessage(kind: .probe, epoch: current, sender: id).encoded()
        for member in members {
            group.enter()
            Thread { [node, id, options] in
                defer { group.leave() }
                if let reply = try? node.request(probe, to: member, id: id, epoch: current, timeout: options.handshakeTimeout * 2,
                                                 handshakeTimeout: options.handshakeTimeout),
                    let message = try? ControlMessage.decode(reply), message.kind == .probe, message.epoch >= current {
                    alive.add(member.id)
                }
            }.start()
        }
        _ = group.wait(timeout: .now() + .milliseconds(Int(options.handshakeTimeout * 2 / .milliseconds(1)) + 2000))
        return !alive.ids.isEmpty
    }

    /// Writes the committed state as a durable checkpoint now (below the minimum, before stopping).
    func saveNow(_ state: ElasticState, worldSize: Int) throws -> String? {
        guard let directory = options.checkpointDirectory else { return nil }
        try checkpointWriter?.close()
        checkpointWriter = nil
        state.restore()
        let store = try CheckpointStore(directory: directory, keep: options.checkpointsKept)
        return try store.save(try state.checkpointSnapshot(epoch: 0, dataCursor: state.step, worldSize: worldSize))
    }
}

/// Ids collected by probe threads.
final class ProbeResults: @unchecked Sendable {
    private let lock = NSLock()
    private var collected: [Int] = []
    func add(_ id: Int) { lock.lock(); collected.append(id); lock.unlock() }
    var ids: [Int] { lock.lock(); defer { lock.unlock() }; return collected }
}
