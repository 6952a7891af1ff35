import Foundation
import PhalanxCollectives
import PhalanxTCP

extension ElasticMember {
    /// The outcome of one agreement round as this member sees it.
    enum Agreement {
        case decided(Decision)
        case stop(source: Int, members: Int)
        /// The coordinator does not see itself as one yet (it still trusts a lower member).
        case retry
    }

    /// Leaves the failed epoch and joins the next: tells everyone, agrees on the members and the
    /// step through the lowest-id reachable member, rebuilds the ring. Loops (bounded) when a
    /// member fails during the change itself.
    /// - Throws: `ElasticError` (evicted, below the minimum, recovery bounds exceeded).
    func recover(cause: String, suspects initial: Set<Int>, state: ElasticState, interruptedStep: Int) throws -> MembershipChange {
        let detectedAt = Date()
        lock.lock()
        recovering = true
        var current = sharedMembership
        var suspects = suspected.union(initial)
        lock.unlock()
        defer {
            lock.lock()
            recovering = false
            lock.unlock()
        }
        let previousMembers = current.members
        logger.warning("member \(id): membership change at step \(interruptedStep): \(cause)")
        let giveUp = ContinuousClock.now + options.agreementTimeout * 4 + options.joinWaitTimeout + options.rebuildTimeout * 2 + .seconds(10)
        while true {
            // Keep beating (so nobody takes this member for hung) but suspect no one meanwhile.
            heartbeat.suspend()
            heartbeat.alert(id: id, epoch: current.epoch, to: current.members.filter { $0.id != id && !suspects.contains($0.id) })
            guard ContinuousClock.now < giveUp else {
                throw ElasticError.recoveryFailed(step: state.step, reason: "no agreement within the recovery bounds (last cause: \(cause))")
            }
            guard let coordinator = current.members.first(where: { !suspects.contains($0.id) }) else {
                throw ElasticError.recoveryFailed(step: state.step, reason: "every member is suspected")
            }
            // A member whose state a failed synchronisation damaged can be no one's source.
            let committed = state.damaged ? -1 : state.step
            let agreement: Agreement
            if coordinator.id == id {
                agreement = try coordinate(current, suspects: &suspects, committed: committed)
            } else {
                guard let answer = ask(coordinator, current: current, suspects: suspects, committed: committed) else {
                    suspects.insert(coordinator.id)
                    continue
                }
                agreement = try answer.get()
            }
            let decision: Decision
            switch agreement {
            case let .stop(source, members):
                dismissPending("the job is stopping: below the minimum of \(options.minimumMembers) members")
                let path = source == id ? try saveNow(state, worldSize: members) : nil
                throw ElasticError.belowMinimum(members: members, minimum: options.minimumMembers, step: state.step, checkpoint: path)
            case let .decided(value):
                decision = value
            case .retry:
                continue
            }
            let agreedAt = Date()
            lock.lock()
            let before = sharedMembership
            sharedMembership = decision.membership
            lastDecision = decision
            suspected = []
            let answers = answerLeftovers()
            lock.unlock()
            send(answers)
            guard decision.membership.position(of: id) != nil else {
                throw ElasticError.evicted(id: id, epoch: decision.membership.epoch, reason: "the others decided without this member")
            }
            // Watch the new neighbours from now on (they beat at the old or the new epoch while
            // they catch up), before the ring is built.
            watchNeighbours(in: decision.membership)
            lock.lock()
            let leftovers = !pending.isEmpty
            interruption.reset()
            if leftovers { interruption.trigger("requests arrived during the last change") }
            lock.unlock()
            let rebuild: MemberNode.RingRebuild
            do {
                rebuild = try connect(decision.membership, previous: transport, previousMembers: before.members)
            } catch let error as CollectiveError {
                // The error names the neighbour's ring position in the new membership.
                if let peer = error.peer, decision.membership.members.indices.contains(peer) {
                    suspects = [decision.membership.members[peer].id]
                } else { suspects = [] }
                current = decision.membership
                logger.warning("member \(id): rebuilding epoch \(current.epoch) failed: \(error)")
                continue
            }
            let rebuiltAt = Date()
            pendingSyncSource = decision.syncRequired ? decision.membership.position(of: decision.source) : nil
            if !decision.syncRequired { state.restore() }
            return MembershipChange(
                epoch: decision.membership.epoch, previousMembers: previousMembers.map(\.id), members: decision.membership.ids,
                lost: previousMembers.map(\.id).filter { decision.membership.position(of: $0) == nil }, joined: decision.joined,
                reason: cause, redoStep: decision.redoStep, interruptedStep: interruptedStep,
                rank: decision.membership.position(of: id) ?? 0, worldSize: decision.membership.members.count,
                keptConnections: (rebuild.keptRight ? 1 : 0) + (rebuild.keptLeft ? 1 : 0),
                detectedAt: detectedAt, agreedAt: agreedAt, rebuiltAt: rebuiltAt, restoredAt: rebuiltAt)
        }
    }

    /// Reports to `coordinator` and waits for its answer; nil when it cannot be reached.
    func ask(_ coordinator: MemberAddress, current: Membership, suspects: Set<Int>, committed: Int) -> Result<Agreement, Error>? {
        var message = ControlMessage(kind: .recover, epoch: current.epoch, sender: id)
        message.committedStep = committed
        message.suspects = Array(suspects)
        // The decision that made this epoch travels along: a coordinator still at the previous
        // epoch (its predecessor died while answering) adopts it.
        lock.lock()
        if let decision = lastDecision, decision.membership.epoch == current.epoch { message.decision = decision }
        lock.unlock()
        let wait = options.agreementTimeout * 2 + options.joinWaitTimeout + .seconds(3)
        let reply: ControlMessage
        do {
            reply = try ControlMessage.decode(try node.request(
                message.encoded(), to: coordinator, id: id, epoch: current.epoch, timeout: wait, handshakeTimeout: options.handshakeTimeout))
        } catch {
            logger.warning("member \(id): coordinator \(coordinator) unreachable: \(error)")
            return nil
        }
        switch reply.kind {
        case .decision:
            guard let decision = reply.decision else { return .failure(ElasticError.protocolViolation("a decision without content")) }
            return .success(.decided(decision))
        case .stop:
            return .success(.stop(source: reply.sender, members: reply.memberCount ?? 0))
        case .stale:
            return .failure(ElasticError.evicted(id: id, epoch: reply.epoch, reason: reply.reason ?? "declared lost"))
        case .redirect, .refuse, .recover, .join, .probe:
            Thread.sleep(forTimeInterval: 0.05)
            return .success(.retry)
        }
    }
}

