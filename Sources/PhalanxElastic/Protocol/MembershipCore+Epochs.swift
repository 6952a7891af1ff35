import PhalanxTCP

extension MembershipCore {
    // MARK: Messages

    /// Routes a message by the epoch it is about: the current one is acted on, an older one
    /// gets the sender up to date, a newer one means this member fell behind.
    mutating func receive(_ message: MembershipMessage, from sender: MemberAddress, _ out: inout [MembershipAction]) {
        if let step = knownFinish {
            // The job's result exists: whoever asks anything learns that, and stops too (the
            // real process has exited; the peers file's "finished" line says the same).
            switch message {
            case .join, .alert, .prepare, .accept, .decided, .behind: out.append(.send(.finished(step: step), to: sender))
            default: break
            }
            return
        }
        if case let .finished(step) = message, isMember {
            learnFinished(at: step, &out)
            return
        }
        if case .stopped = phase {
            // Still tell members that missed it how the job ended.
            switch message {
            case .join: out.append(.send(.refuse(reason: "the job has stopped", retry: false), to: sender))
            case let .behind(epoch): catchUp(sender, after: epoch, &out)
            default: if let epoch = message.epoch, epoch < membership.epoch { catchUp(sender, after: epoch, &out) }
            }
            return
        }
        if phase == .joining {
            receiveAsNewcomer(message, from: sender, &out)
            return
        }
        if awaitingDataPlane {
            deferred.append(Deferred(message: message, sender: sender))
            return
        }
        switch message {
        case let .join(address):
            admit(address, &out)
        case let .behind(epoch):
            catchUp(sender, after: epoch, &out)
        case let .decided(list):
            adopt(list, from: sender, &out)
        case .redirect, .refuse, .finished:
            break
        case .alert, .prepare, .promise, .reject, .accept, .accepted:
            guard let epoch = message.epoch else { return }
            if epoch < membership.epoch {
                if let witness = config.witness, Self.sameProcess(witness, sender) { return }
                catchUp(sender, after: epoch, &out)
            } else if epoch > membership.epoch {
                out.append(.send(.behind(epoch: membership.epoch), to: sender))
            } else {
                receiveCurrent(message, from: sender, &out)
            }
        }
    }

    /// A message about the current epoch.
    mutating func receiveCurrent(_ message: MembershipMessage, from sender: MemberAddress, _ out: inout [MembershipAction]) {
        switch message {
        case let .alert(_, peer, peers):
            if phase == .changing {
                suspects.formUnion(peers.filter { $0 != id })
            } else {
                leave(suspecting: peers, reason: "member \(peer) reported a failure", alert: false, fromDataPlane: false, &out)
            }
        case let .prepare(_, ballot), let .accept(_, ballot, _):
            vote(on: message, ballot: ballot, from: sender, &out)
        case .promise, .accepted, .reject:
            tally(message, &out)
        default:
            break
        }
    }

    /// The step at which this process knows the job finished: it holds that step, or another
    /// process told it so.
    var knownFinish: Int? {
        if phase == .finished { return holding.step }
        if case .stopped = phase { return jobFinishedAt }
        return nil
    }

    /// A member holds the job's last step: this member stops too (whatever it was doing),
    /// instead of agreeing on a membership that would only redo that step.
    mutating func learnFinished(at step: Int, _ out: inout [MembershipAction]) {
        guard step >= config.lastStep else { return }
        let reason = "the job finished at step \(step) (another member holds it)"
        if phase == .training || phase == .synchronizing, !awaitingDataPlane { out.append(.stopTraining(reason: reason)) }
        jobFinishedAt = step
        phase = .stopped(reason: reason)
        awaitingDataPlane = false
        deferred = []
        round = nil
        cancelAllTimers()
        out.append(.stop(reason: reason))
    }

    /// Sends a member that is at `epoch` the decisions that came after it (it installs those
    /// that include it and learns that it was left out otherwise).
    func catchUp(_ sender: MemberAddress, after epoch: UInt64, _ out: inout [MembershipAction]) {
        let newer = decisions.filter { $0.epoch > epoch }
        guard !newer.isEmpty else { return }
        out.append(.send(.decided(newer), to: sender))
    }

    /// Installs the decisions after the current epoch, in order, while they include this member.
    mutating func adopt(_ list: [MembershipDecision], from sender: MemberAddress, _ out: inout [MembershipAction]) {
        for decision in list.sorted(by: { $0.epoch < $1.epoch }) where decision.epoch > membership.epoch {
            guard isMember else { return }
            if awaitingDataPlane {
                deferred.append(Deferred(message: .decided([decision]), sender: sender))
                continue
            }
            if decision.epoch == membership.epoch + 1 {
                if phase == .training || phase == .synchronizing {
                    // Told by a faster member: stop the step in flight before moving on.
                    leave(suspecting: [], reason: "epoch \(decision.epoch) was decided", alert: false, fromDataPlane: false, &out)
                    if awaitingDataPlane {
                        deferred.append(Deferred(message: .decided([decision]), sender: sender))
                        continue
                    }
                }
                install(decision, &out)
            } else if let last = list.max(by: { $0.epoch < $1.epoch }), !last.membership.members.contains(where: { Self.sameProcess($0, config.address) }) {
                // A gap: this member missed epochs, and the newest one does not include it.
                leaveJob(reason: "the job moved on to epoch \(last.epoch) without member \(id ?? -1)", directory: last.membership.members, epoch: last.epoch, &out)
                return
            } else {
                out.append(.send(.behind(epoch: membership.epoch), to: sender))
                return
            }
        }
    }

    // MARK: Installing an epoch

    /// Makes `decision` the current epoch: build the ring, then take the reference state (or
    /// restore one's own) and train. A member left out of it asks to be admitted again.
    mutating func install(_ decision: MembershipDecision, _ out: inout [MembershipAction]) {
        decisions.append(decision)
        if decisions.count > Self.keptDecisions { decisions.removeFirst(decisions.count - Self.keptDecisions) }
        promised = .none
        accepted = nil
        round = nil
        suspects = []
        failedRounds = 0
        cancelAllTimers()
        if let stop = decision.stop {
            membership = decision.membership
            let reason: String
            switch stop {
            case let .belowMinimum(members, minimum):
                reason = "only \(members) member(s) left at step \(holding.step), below the minimum of \(minimum)"
            case .noIntactState:
                reason = "no member of the quorum holds an intact committed state"
            }
            phase = .stopped(reason: reason)
            out.append(.stop(reason: reason))
            return
        }
        guard let me = decision.membership.members.first(where: { Self.sameProcess($0, config.address) }) else {
            leaveJob(reason: "epoch \(decision.epoch) was decided without member \(id ?? -1)", directory: decision.membership.members,
                     epoch: decision.epoch, &out)
            return
        }
        id = me.id
        membership = decision.membership
        directory = membership.members.filter { !Self.sameProcess($0, config.address) }
        pendingJoins.removeAll { address in membership.members.contains { Self.sameProcess($0, address) } }
        // Newcomers that cannot be admitted into this membership ask again later.
        pendingJoins = Array(pendingJoins.prefix(max(0, admissibleMembers - membership.members.count)))
        out.append(.installRing(membership))
        if decision.syncRequired {
            phase = .synchronizing
            out.append(.synchronize(source: decision.source, step: decision.redoStep))
        } else {
            out.append(.restore(step: decision.redoStep))
            holding = Holding(step: decision.redoStep)
            startTraining(&out)
        }
    }

    /// Out of the membership: start over as a newcomer through the members of `directory`.
    mutating func leaveJob(reason: String, directory: [MemberAddress], epoch: UInt64, _ out: inout [MembershipAction]) {
        out.append(.evicted(reason: reason))
        id = nil
        membership = Membership(epoch: epoch, members: [], nextID: 0)
        promised = .none
        accepted = nil
        round = nil
        suspects = []
        pendingJoins = []
        for kind in [MembershipTimer.Kind.awaitCoordinator, .roundDeadline, .retryRound] { cancel(kind) }
        beginJoining(directory: directory, &out)
    }
}
