import Foundation
import PhalanxCheckpoint
import PhalanxTCP

extension ElasticMember {
    /// The coordinator's side of a change: gathers the reports of the epoch's members (and any
    /// join requests) until everyone not suspected has reported or the agreement timeout
    /// passes, waits (bounded) for joiners when below the minimum, then decides and answers.
    ///
    /// A coordinator that reaches fewer than half of the epoch's members assumes it is the one
    /// cut off (it was hung while the others moved on) and steps down as evicted.
    func coordinate(_ current: Membership, suspects: inout Set<Int>, committed: Int) throws -> Agreement {
        var reports: [Int: Int] = [id: committed]
        var waiting: [ControlRequest] = []
        var joiners: [(ControlRequest, MemberAddress)] = []
        let gatherDeadline = ContinuousClock.now + options.agreementTimeout
        var joinDeadline: ContinuousClock.Instant?
        lock.lock()
        while true {
            let batch = pending
            pending = []
            for (request, message) in batch {
                switch message.kind {
                case .recover where message.epoch == current.epoch && current.position(of: message.sender) != nil:
                    reports[message.sender] = message.committedStep ?? 0
                    suspects.formUnion(message.suspects ?? [])
                    waiting.append(request)
                case .recover where message.epoch < current.epoch:
                    answerLate(request, message)
                case .join:
                    if let address = message.address { joiners.append((request, address)) } else { request.close() }
                default:
                    request.close()
                }
            }
            suspects.subtract(reports.keys)
            let missing = current.ids.filter { reports[$0] == nil && !suspects.contains($0) }
            let now = ContinuousClock.now
            if missing.isEmpty || now >= gatherDeadline {
                if reports.count + joiners.count >= options.minimumMembers || reports.count * 2 < current.members.count { break }
                if joinDeadline == nil {
                    joinDeadline = now + options.joinWaitTimeout
                    logger.warning("member \(id): \(reports.count) member(s) left, below the minimum of \(options.minimumMembers); waiting up to \(options.joinWaitTimeout) for joiners")
                }
                if let joinDeadline, now >= joinDeadline { break }
            }
            _ = lock.wait(until: Date(timeIntervalSinceNow: 0.01))
        }
        lock.unlock()

        let reached = current.members.filter { reports[$0.id] != nil }
        if reached.count * 2 < current.members.count {
            for request in waiting { request.close() }
            for (request, _) in joiners { request.close() }
            throw ElasticError.evicted(
                id: id, epoch: current.epoch,
                reason: "only \(reached.count) of \(current.members.count) members answered; the others must have moved on without this one")
        }
        let redo = reports.values.max() ?? committed
        let source = reached.first { reports[$0.id] == redo }?.id ?? id
        if reached.count + joiners.count < options.minimumMembers {
            var stop = ControlMessage(kind: .stop, epoch: current.epoch, sender: source)
            stop.memberCount = reached.count
            stop.reason = "below the minimum of \(options.minimumMembers) members"
            for request in waiting { request.reply(stop.encoded()) }
            var refuse = ControlMessage(kind: .refuse, epoch: current.epoch, sender: id)
            refuse.reason = "the job is stopping"
            for (request, _) in joiners { request.reply(refuse.encoded()) }
            return .stop(source: source, members: reached.count)
        }
        var members = reached
        var nextID = current.nextID
        var admitted: [(ControlRequest, MemberAddress)] = []
        for (request, address) in joiners {
            guard members.count < options.maximumMembers else {
                var refuse = ControlMessage(kind: .refuse, epoch: current.epoch, sender: id)
                refuse.reason = "the job already has the maximum of \(options.maximumMembers) members"
                request.reply(refuse.encoded())
                continue
            }
            let assigned = MemberAddress(id: nextID, host: address.host, port: address.port)
            nextID += 1
            members.append(assigned)
            admitted.append((request, assigned))
        }
        let lost = current.ids.filter { reports[$0] == nil }
        let decision = Decision(
            membership: Membership(epoch: current.epoch + 1, members: members, nextID: nextID),
            redoStep: redo, source: source,
            syncRequired: !admitted.isEmpty || reports.values.contains { $0 != redo },
            lost: lost, joined: admitted.map(\.1.id),
            reason: lost.isEmpty ? (admitted.isEmpty ? "renewal" : "join") : "members \(lost) lost")
        var answer = ControlMessage(kind: .decision, epoch: decision.membership.epoch, sender: id)
        answer.decision = decision
        for request in waiting { request.reply(answer.encoded()) }
        for (request, assigned) in admitted {
            var welcome = answer
            welcome.address = assigned
            request.reply(welcome.encoded())
        }
        logger.info("member \(id) decided epoch \(decision.membership.epoch): members \(decision.membership.ids), redo step \(redo) from member \(source)")
        return .decided(decision)
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
