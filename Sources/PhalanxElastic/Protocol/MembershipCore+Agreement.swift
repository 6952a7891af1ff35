import PhalanxTCP

extension MembershipCore {
    // MARK: Leaving an epoch

    /// Leaves the current epoch (a failure, an alert, a coordinator's prepare, a join): stops
    /// the data plane first, so that what this member reports is what its state holds.
    /// `coordinated`: a coordinator's message made it leave (it answers that one instead of
    /// competing with it).
    mutating func leave(
        suspecting peers: [Int], reason: String, alert: Bool, fromDataPlane: Bool, coordinated: Bool = false, _ out: inout [MembershipAction]
    ) {
        suspects.formUnion(peers.filter { $0 != id })
        switch phase {
        case .training, .synchronizing:
            phase = .changing
            alertWhenStopped = alertWhenStopped || alert
            if fromDataPlane {
                afterLeaving(coordinated: coordinated, &out)
            } else {
                awaitingDataPlane = true
                out.append(.stopTraining(reason: reason))
            }
        case .finished, .changing, .joining, .stopped:
            // A finished member holds the result and stays out of further changes.
            break
        }
    }

    /// Once the data plane is idle: tell the others (an alert stops their step at once) and
    /// find out who coordinates.
    mutating func afterLeaving(coordinated: Bool = false, _ out: inout [MembershipAction]) {
        if alertWhenStopped, let id {
            let message = MembershipMessage.alert(epoch: membership.epoch, sender: id, suspects: suspects.sorted())
            for member in others { out.append(.send(message, to: member)) }
        }
        alertWhenStopped = false
        // A coordinator's message held back while the data plane stopped is answered next:
        // competing with it would only delay the agreement.
        let coordinatorWaiting = coordinated || deferred.contains {
            switch $0.message {
            case .prepare, .accept, .decided: true
            default: false
            }
        }
        if round == nil, promised == .none, !coordinatorWaiting, candidate?.id == id {
            beginRound(&out)
        } else if round == nil {
            arm(.awaitCoordinator, after: config.coordinatorTimeout, jitter: config.coordinatorTimeout / 2, &out)
        }
    }

    /// The member expected to coordinate: the lowest id this member does not suspect.
    var candidate: MemberAddress? {
        membership.members.first { !suspects.contains($0.id) } ?? membership.members.first
    }

    /// Nobody coordinated in time: suspect the one expected, and coordinate if next in line.
    mutating func coordinatorSilent(_ out: inout [MembershipAction]) {
        guard phase == .changing, round == nil, !awaitingDataPlane else { return }
        // The coordinator last heard from, or (once that one is suspected) the next in line.
        let heard = promised != .none && !suspects.contains(promised.coordinator) ? promised.coordinator : nil
        if let expected = heard ?? candidate?.id, expected != id { suspects.insert(expected) }
        if candidate?.id == id {
            beginRound(&out)
        } else {
            arm(.awaitCoordinator, after: config.coordinatorTimeout, jitter: config.coordinatorTimeout / 2, &out)
        }
    }

    // MARK: Coordinator

    /// Starts a round with a ballot above every ballot seen; promises to it itself.
    mutating func beginRound(_ out: inout [MembershipAction]) {
        guard let id else { return }
        cancel(.awaitCoordinator)
        highestRound = max(highestRound, promised.round) + 1
        let ballot = Ballot(round: highestRound, coordinator: id)
        promised = ballot
        var fresh = CoordinatorRound(ballot: ballot)
        fresh.promises[id] = .init(holding: holding, accepted: accepted)
        round = fresh
        let message = MembershipMessage.prepare(epoch: membership.epoch, ballot: ballot)
        for member in others { out.append(.send(message, to: member)) }
        if witnessVotes, let witness = config.witness { out.append(.send(message, to: witness)) }
        arm(.roundDeadline, after: config.agreementTimeout, &out)
        advanceRound(&out)
    }

    /// Moves the round on when its stage has what it needs.
    mutating func advanceRound(_ out: inout [MembershipAction]) {
        guard let current = round else { return }
        switch current.stage {
        case .preparing:
            guard isQuorum(memberVotes: current.promises.count, witnessVote: current.witnessPromise != nil) else {
                if current.deadlinePassed { failRound(&out) }
                return
            }
            let silent = membership.members.contains { current.promises[$0.id] == nil && !suspects.contains($0.id) }
            guard !silent || current.deadlinePassed else {
                // A failure round stops waiting soon for members nobody suspects yet (a hung
                // one is left out before its heartbeats time out); a round without suspects
                // (a join) waits for everyone until the deadline: a busy member is not evicted.
                if !current.graceArmed, !suspects.isEmpty {
                    round?.graceArmed = true
                    arm(.roundDeadline, after: config.quorumGrace, &out)
                }
                return
            }
            propose(&out)
        case let .accepting(decision):
            if isQuorum(memberVotes: current.accepts.count, witnessVote: current.witnessAccepted) {
                chosen(decision, &out)
            } else if current.deadlinePassed {
                failRound(&out)
            }
        }
    }

    /// Phase 2: re-proposes the highest accepted proposal (it may have been chosen), or builds one.
    mutating func propose(_ out: inout [MembershipAction]) {
        guard var current = round, let id else { return }
        let decision = current.highestAccepted?.decision ?? buildDecision(current)
        current.stage = .accepting(decision)
        current.deadlinePassed = false
        current.accepts = [id]
        round = current
        accepted = AcceptedProposal(ballot: current.ballot, decision: decision)
        let message = MembershipMessage.accept(epoch: membership.epoch, ballot: current.ballot, decision: decision)
        for member in others { out.append(.send(message, to: member)) }
        if witnessVotes, let witness = config.witness { out.append(.send(message, to: witness)) }
        arm(.roundDeadline, after: config.agreementTimeout, &out)
        advanceRound(&out)
    }

    /// The proposal from the promises: the promisers in ring order, then the joiners; the
    /// newest intact commit among them, from the first promiser holding it.
    func buildDecision(_ current: CoordinatorRound) -> MembershipDecision {
        let stayed = membership.members.filter { current.promises[$0.id] != nil }
        let lost = membership.ids.filter { current.promises[$0] == nil }
        let holdings = stayed.compactMap { current.promises[$0.id]?.holding }
        let epoch = membership.epoch + 1
        guard let redo = holdings.filter(\.intact).map(\.step).max() else {
            return MembershipDecision(
                membership: Membership(epoch: epoch, members: stayed, nextID: membership.nextID), redoStep: -1,
                source: stayed.first?.id ?? -1, syncRequired: false, lost: lost, joined: [], stop: .noIntactState)
        }
        var members = stayed
        var nextID = membership.nextID
        var joined: [Int] = []
        // Newcomers are admitted only while the members who stayed remain a quorum of the new
        // membership (alone, or with the witness): newcomers that die on arrival can then
        // never block the next agreement. A finished job admits nobody.
        let witnessNext = config.quorum == .majorityOrWitness && config.witness != nil
        let admissible = redo >= config.lastStep ? stayed.count : (witnessNext ? 2 * stayed.count : 2 * stayed.count - 1)
        let limit = min(config.maximumMembers, admissible)
        for address in pendingJoins where members.count < limit && !members.contains(where: { Self.sameProcess($0, address) }) {
            members.append(MemberAddress(id: nextID, host: address.host, port: address.port))
            joined.append(nextID)
            nextID += 1
        }
        let source = stayed.first { current.promises[$0.id]?.holding == Holding(step: redo) }?.id ?? -1
        let sync = !joined.isEmpty || holdings.contains { $0 != Holding(step: redo) }
        var decision = MembershipDecision(
            membership: Membership(epoch: epoch, members: members, nextID: nextID), redoStep: redo, source: source,
            syncRequired: sync, lost: lost, joined: joined)
        if members.count < config.minimumMembers {
            decision.stop = .belowMinimum(members: members.count, minimum: config.minimumMembers)
        }
        return decision
    }

    /// The round failed (no quorum in time): try again later, further apart each time.
    mutating func failRound(_ out: inout [MembershipAction]) {
        if let current = round {
            let reached: Set<Int> = switch current.stage {
            case .preparing: Set(current.promises.keys)
            case .accepting: current.accepts
            }
            out.append(.noQuorum(epoch: membership.epoch, reached: reached.sorted(), members: membership.members.count))
        }
        round = nil
        cancel(.roundDeadline)
        failedRounds += 1
        // Maybe the job moved on and every member of this epoch that knows is gone: ask the
        // directory's members what happened since.
        for address in directory where !membership.members.contains(where: { Self.sameProcess($0, address) }) {
            out.append(.send(.behind(epoch: membership.epoch), to: address))
        }
        let backoff = config.agreementTimeout * min(1 << min(failedRounds - 1, 3), 4)
        arm(.retryRound, after: backoff / 2, jitter: backoff, &out)
    }

    /// A quorum accepted `decision`: tell everyone concerned and install it.
    mutating func chosen(_ decision: MembershipDecision, _ out: inout [MembershipAction]) {
        round = nil
        failedRounds = 0
        cancel(.roundDeadline)
        var recipients: [MemberAddress] = []
        for member in others + decision.membership.members where member.id != id {
            if !recipients.contains(where: { Self.sameProcess($0, member) }) { recipients.append(member) }
        }
        for member in recipients { out.append(.send(.decided([decision]), to: member)) }
        if decision.stop == nil { out.append(.publishDirectory(decision.membership)) }
        install(decision, &out)
    }

    // MARK: Acceptor

    /// A prepare or accept for the current epoch: promise (or accept) unless a higher ballot
    /// was promised; leaving the epoch first if this member was still in it.
    mutating func vote(on message: MembershipMessage, ballot: Ballot, from sender: MemberAddress, _ out: inout [MembershipAction]) {
        highestRound = max(highestRound, ballot.round)
        let epoch = membership.epoch
        guard ballot >= promised else {
            out.append(.send(.reject(epoch: epoch, ballot: ballot, promised: promised), to: sender))
            return
        }
        if phase != .changing {
            leave(suspecting: [], reason: "member \(ballot.coordinator) started an agreement", alert: false, fromDataPlane: false, coordinated: true, &out)
            if awaitingDataPlane {
                deferred.append(Deferred(message: message, sender: sender))
                return
            }
        }
        guard let id else { return }
        // Never promise below a ballot promised meanwhile (defensive: leaving starts no round
        // when a coordinator's message caused it).
        guard ballot >= promised else {
            out.append(.send(.reject(epoch: epoch, ballot: ballot, promised: promised), to: sender))
            return
        }
        promised = ballot
        if let current = round, current.ballot < ballot {
            round = nil
            cancel(.roundDeadline)
        }
        // Another coordinator is at work: a retry of this member's own failed round would only
        // pre-empt it (dueling coordinators); the coordinator timeout takes over instead.
        if ballot.coordinator != id { cancel(.retryRound) }
        switch message {
        case .prepare:
            out.append(.send(.promise(epoch: epoch, ballot: ballot, sender: id, holding: holding, accepted: accepted), to: sender))
        case let .accept(_, _, decision):
            accepted = AcceptedProposal(ballot: ballot, decision: decision)
            out.append(.send(.accepted(epoch: epoch, ballot: ballot, sender: id), to: sender))
        default:
            return
        }
        if round == nil { arm(.awaitCoordinator, after: config.coordinatorTimeout, jitter: config.coordinatorTimeout / 2, &out) }
    }

    /// A promise, acceptance or rejection answering this member's round.
    mutating func tally(_ message: MembershipMessage, _ out: inout [MembershipAction]) {
        guard var current = round else { return }
        switch (message, current.stage) {
        case let (.promise(_, ballot, sender, holding, accepted), .preparing) where ballot == current.ballot:
            let promise = CoordinatorRound.Promise(holding: holding, accepted: accepted)
            if sender == Self.witnessID { current.witnessPromise = promise } else if membership.position(of: sender) != nil {
                current.promises[sender] = promise
            }
        case let (.accepted(_, ballot, sender), .accepting) where ballot == current.ballot:
            if sender == Self.witnessID { current.witnessAccepted = true } else if membership.position(of: sender) != nil {
                current.accepts.insert(sender)
            }
        case let (.reject(_, ballot, higher), _) where ballot == current.ballot:
            highestRound = max(highestRound, higher.round)
            round = nil
            cancel(.roundDeadline)
            arm(.awaitCoordinator, after: config.coordinatorTimeout, jitter: config.coordinatorTimeout / 2, &out)
            return
        default:
            return
        }
        round = current
        advanceRound(&out)
    }
}
