import PhalanxTCP

extension MembershipCore {
    // MARK: Newcomer

    /// Starts asking the members of `directory` (in turn, further apart each round) to admit
    /// this process.
    mutating func beginJoining(directory list: [MemberAddress], _ out: inout [MembershipAction]) {
        phase = .joining
        directory = list.filter { !Self.sameProcess($0, config.address) }
        joinAttempts = 0
        askToJoin(&out)
    }

    /// Sends one join request and arms the next.
    mutating func askToJoin(_ out: inout [MembershipAction]) {
        if !directory.isEmpty {
            out.append(.send(.join(address: config.address), to: directory[joinAttempts % directory.count]))
        }
        let rounds = directory.isEmpty ? 0 : joinAttempts / directory.count
        joinAttempts += 1
        let wait = min(config.joinRetry * (1 << min(rounds, 4)), config.agreementTimeout)
        arm(.retryJoin, after: wait, jitter: wait / 2, &out)
    }

    /// Tells the core where the job's live members are (the published directory changed): a
    /// newcomer asks them, and a member whose own epoch went silent asks them what it missed.
    public mutating func updateDirectory(_ list: [MemberAddress]) {
        let fresh = list.filter { !Self.sameProcess($0, config.address) }
        guard !fresh.isEmpty else { return }
        directory = fresh
    }

    /// A newcomer listens to redirects, refusals, "finished", and the decision that admits it.
    /// It still tells members of old epochs what it knows (an evicted member may be the last
    /// live process that saw a decision), and asks members of newer epochs what it missed (it
    /// may have been admitted without hearing of it).
    mutating func receiveAsNewcomer(_ message: MembershipMessage, from sender: MemberAddress, _ out: inout [MembershipAction]) {
        if let epoch = message.epoch {
            if case let .behind(known) = message {
                catchUp(sender, after: known, &out)
            } else if epoch < (decisions.last?.epoch ?? 0) {
                catchUp(sender, after: epoch, &out)
            } else if epoch > membership.epoch, config.witness.map({ !Self.sameProcess($0, sender) }) ?? true {
                out.append(.send(.behind(epoch: membership.epoch), to: sender))
            }
            return
        }
        switch message {
        case .join:
            // Another newcomer took this process for a member (it may be one without knowing:
            // admitted by a decision it missed). "What do you know?" gets that decision here.
            out.append(.send(.behind(epoch: membership.epoch), to: sender))
        case let .redirect(list):
            let fresh = list.filter { !Self.sameProcess($0, config.address) }
            guard let first = fresh.first else { return }
            directory = fresh
            out.append(.send(.join(address: config.address), to: first))
        case let .decided(list):
            let admitting = list.last { decision in
                decision.epoch > membership.epoch && decision.stop == nil
                    && decision.membership.members.contains { Self.sameProcess($0, config.address) && decision.joined.contains($0.id) }
            }
            if let admitting {
                install(admitting, &out)
            } else if let newest = list.max(by: { $0.epoch < $1.epoch }), newest.stop == nil, !newest.membership.members.isEmpty {
                updateDirectory(newest.membership.members)
            }
        case let .finished(step):
            let reason = "the job finished at step \(step) before this process was admitted"
            jobFinishedAt = step
            phase = .stopped(reason: reason)
            cancel(.retryJoin)
            out.append(.stop(reason: reason))
        case let .refuse(reason, retry) where !retry:
            phase = .stopped(reason: reason)
            cancel(.retryJoin)
            out.append(.stop(reason: "not admitted: \(reason)"))
        default:
            break
        }
    }

    // MARK: Member

    /// A newcomer asks this member: the leader starts a change at once (the step in flight
    /// is discarded); the others point it to the leader.
    /// (A finished member never gets here: `receive` answers every join with "finished".)
    mutating func admit(_ address: MemberAddress, _ out: inout [MembershipAction]) {
        if membership.members.contains(where: { Self.sameProcess($0, address) }) {
            // Admitted already: it missed the decision.
            if let last = decisions.last, last.membership.members.contains(where: { Self.sameProcess($0, address) }) {
                out.append(.send(.decided([last]), to: address))
            }
            return
        }
        if !pendingJoins.contains(where: { Self.sameProcess($0, address) }) {
            guard membership.members.count + pendingJoins.count < admissibleMembers else {
                let reason = membership.members.count >= config.maximumMembers
                    ? "the job already has the maximum of \(config.maximumMembers) members"
                    : "the job cannot admit a newcomer now: its \(membership.members.count) member(s) would no longer be a quorum without a witness"
                out.append(.send(.refuse(reason: reason, retry: true), to: address))
                return
            }
            pendingJoins.append(address)
        }
        guard let leader = membership.members.first else { return }
        if leader.id == id {
            if phase == .training {
                leave(suspecting: [], reason: "a newcomer asks to join", alert: false, fromDataPlane: false, &out)
            }
        } else if phase != .changing {
            out.append(.send(.redirect(to: membership.members), to: address))
        }
    }

    /// How many members the next membership may have if everyone stays: newcomers must leave
    /// the members who stayed a quorum of it (alone, or with the witness).
    var admissibleMembers: Int {
        let count = membership.members.count
        let witness = config.quorum == .majorityOrWitness && config.witness != nil
        return min(config.maximumMembers, witness ? 2 * count : 2 * count - 1)
    }

    // MARK: Training

    /// Trains from the state held, or finishes when it already holds the last step.
    mutating func startTraining(_ out: inout [MembershipAction]) {
        if holding.step >= config.lastStep {
            finish(&out)
        } else {
            phase = .training
            out.append(.train(from: holding.step))
        }
    }

    /// A step committed: finish at the last step; the leader admits waiting newcomers.
    mutating func committed(_ out: inout [MembershipAction]) {
        if holding.step >= config.lastStep {
            finish(&out)
        } else if membership.members.first?.id == id, !pendingJoins.isEmpty {
            leave(suspecting: [], reason: "newcomers ask to join", alert: false, fromDataPlane: false, &out)
        }
    }

    /// Holds the last step: newcomers are told the job is over.
    mutating func finish(_ out: inout [MembershipAction]) {
        phase = .finished
        out.append(.finished(step: holding.step))
        for address in pendingJoins { out.append(.send(.finished(step: holding.step), to: address)) }
        pendingJoins = []
    }

    /// A timer of the current generation fired.
    mutating func fire(_ kind: MembershipTimer.Kind, _ out: inout [MembershipAction]) {
        switch kind {
        case .awaitCoordinator:
            coordinatorSilent(&out)
        case .roundDeadline:
            guard round != nil else { return }
            round?.deadlinePassed = true
            advanceRound(&out)
        case .retryRound:
            guard phase == .changing, round == nil, !awaitingDataPlane else { return }
            if candidate?.id == id {
                beginRound(&out)
            } else {
                arm(.awaitCoordinator, after: config.coordinatorTimeout, jitter: config.coordinatorTimeout / 2, &out)
            }
        case .retryJoin:
            guard phase == .joining else { return }
            askToJoin(&out)
        }
    }
}
