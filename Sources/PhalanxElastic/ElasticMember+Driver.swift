import Foundation
import PhalanxCollectives
import PhalanxTCP

extension ElasticMember {
    /// Feeds one event to the core (any thread) and carries out its actions: sends, timers and
    /// the directory at once; data-plane actions queued for the training thread.
    func feed(_ event: MembershipEvent) {
        lock.lock()
        guard !closed else { lock.unlock(); return }
        let actions = core.handle(event)
        if logger.logLevel <= .debug {
            switch event {
            case .stepCommitted: break
            default: logger.debug("member \(core.id ?? -1) [\(core.phase)] \(event) → \(actions)")
            }
        }
        let outside = route(actions)
        lock.unlock()
        perform(outside)
    }

    /// Under `lock`: queues the data-plane actions (waking the training thread, interrupting
    /// its collective for a stop) and returns the others, to be performed after unlocking.
    func route(_ actions: [MembershipAction]) -> [MembershipAction] {
        var outside: [MembershipAction] = []
        for action in actions {
            switch action {
            case .send, .armTimer, .publishDirectory, .noQuorum:
                outside.append(action)
            case let .stopTraining(reason):
                instructions.append(action)
                interruption.trigger(reason)
            case .installRing:
                if let assigned = core.id {
                    node.memberID = assigned
                    channel.id = assigned
                }
                instructions.append(action)
            case let .evicted(reason):
                // `id` belongs to the training thread; the channel still holds the old id here.
                logger.warning("member \(channel.id) was evicted (\(reason)); asking to join again")
                // Until admitted again, this process answers handshakes as a newcomer (a new
                // neighbour connecting to its next id then waits instead of failing).
                node.memberID = MemberNode.newcomerID
                channel.id = MemberNode.newcomerID
                instructions.append(action)
                interruption.trigger(reason)
            case .synchronize, .restore, .train, .finished, .stop:
                instructions.append(action)
            }
        }
        if !actions.isEmpty { lock.broadcast() }
        return outside
    }

    /// Carries out sends, timers and directory updates (never under `lock`).
    func perform(_ actions: [MembershipAction]) {
        for action in actions {
            switch action {
            case let .send(message, address):
                if case .refuse = message { metrics.joinRefused() }
                channel.send(message, to: address)
            case let .armTimer(timer, delay):
                let nanoseconds = max(0, delay / .nanoseconds(1))
                DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(nanoseconds))) { [weak self] in
                    // Before asking again, look at the published directory (the job may have
                    // moved on to members this process never heard of).
                    if timer.kind == .retryJoin || timer.kind == .retryRound { self?.refreshDirectory() }
                    self?.feed(.timerFired(timer))
                }
            case let .publishDirectory(membership):
                if let peersFile { PeersFile.write(membership, to: peersFile) }
            case let .noQuorum(epoch, reached, members):
                let witness = members % 2 == 0 && core.config.witness != nil ? " (or half of them and the witness)" : ""
                logger.warning(
                    "member \(channel.id): no quorum to leave epoch \(epoch): only members \(reached) of \(members) answered; a new membership needs more than half of them\(witness). Training stays stopped; trying again.")
            default:
                break
            }
        }
    }

    /// How long a member may go on trying to agree before it gives up.
    var recoveryBound: Duration {
        options.agreementTimeout * 4 + options.joinWaitTimeout + options.rebuildTimeout * 2 + .seconds(10)
    }

    /// Gives the core the addresses in the peers file, if there is one.
    func refreshDirectory() {
        guard let peersFile else { return }
        let addresses = PeersFile.addresses(peersFile)
        guard !addresses.isEmpty else { return }
        lock.lock()
        core.updateDirectory(addresses)
        lock.unlock()
    }

    /// The next instruction for the training thread; nil when a stop was requested or the
    /// member was shut down. Waits in slices so that a stop request is seen promptly.
    /// - Throws: `ElasticError.noMemberReachable` when this process has been asking to be
    ///   admitted again (after an eviction) for longer than the start timeout, or every member
    ///   it asks is gone.
    func nextInstruction() throws -> MembershipAction? {
        lock.lock()
        defer { lock.unlock() }
        var joiningSince: Date?
        var changingSince: Date?
        while instructions.isEmpty {
            if stopping || closed { return nil }
            _ = lock.wait(until: Date().addingTimeInterval(0.1))
            if core.phase == .changing {
                // No agreement for this long: the job finished without this member, or it is
                // cut off from a quorum for good.
                let since = changingSince ?? Date()
                changingSince = since
                if let peersFile, let step = PeersFile.finishedStep(peersFile) { throw ElasticError.jobFinished(step: step) }
                if Date().timeIntervalSince(since) > Double(recoveryBound / .milliseconds(1)) / 1000 {
                    throw ElasticError.recoveryFailed(
                        step: core.holding.step, reason: "no agreement with a quorum of epoch \(core.membership.epoch) within \(recoveryBound)")
                }
            } else {
                changingSince = nil
            }
            guard core.phase == .joining else {
                joiningSince = nil
                continue
            }
            let since = joiningSince ?? Date()
            joiningSince = since
            if let peersFile, let step = PeersFile.finishedStep(peersFile) { throw ElasticError.jobFinished(step: step) }
            let tried = core.directory.map { "\($0.host):\($0.port)" }
            if Date().timeIntervalSince(since) > Double(options.startTimeout / .milliseconds(1)) / 1000 {
                throw ElasticError.noMemberReachable(tried: tried, lastError: "not admitted again within \(options.startTimeout)")
            }
            if Date().timeIntervalSince(since) > 1, let failures = channel.undeliverable(core.directory) {
                throw ElasticError.noMemberReachable(tried: failures, lastError: failures.last ?? "")
            }
        }
        return instructions.removeFirst()
    }

    /// Takes a queued `.stopTraining`, if any, and answers it with what the state holds.
    /// Returns whether there was one.
    @discardableResult
    func answerStop(_ state: ElasticState?) -> Bool {
        lock.lock()
        guard let index = instructions.firstIndex(where: { if case .stopTraining = $0 { true } else { false } }) else {
            lock.unlock()
            return false
        }
        instructions.remove(at: index)
        lock.unlock()
        // Training stops for a change of members (a failure elsewhere, a newcomer).
        metrics.notReady()
        interruption.reset()
        feed(.trainingStopped(holding: state.map(reported) ?? Holding(step: 0, intact: false)))
        return true
    }

    /// Takes the first instruction, which must be the initial `.installRing` (at start).
    func takeInstallRing() throws {
        lock.lock()
        defer { lock.unlock() }
        guard case let .installRing(membership) = instructions.first else {
            throw ElasticError.protocolViolation("the membership core did not build the first ring")
        }
        instructions.removeFirst()
        pendingRing = membership
    }

    /// Builds the ring of the membership waiting to be built (reusing the connections to
    /// neighbours that stay) and points the heartbeats at the new neighbours.
    /// - Throws: `CollectiveError` naming the neighbour that could not be reached.
    func buildPendingRing() throws {
        guard let membership = pendingRing else { return }
        let previousMembers = ringMembership?.members ?? []
        let (transport, rebuild) = try node.buildRing(
            members: membership.members, id: id, epoch: membership.epoch, previous: transport, previousMembers: previousMembers,
            timeout: options.rebuildTimeout, interruption: interruption,
            abortHandler: { [weak self] error in self?.transportFailed(error) })
        self.transport = transport
        ring = RingCommunicator(transport: transport, epoch: membership.epoch)
        ringMembership = membership
        pendingRing = nil
        change?.rebuiltAt = Date()
        change?.keptConnections = (rebuild.keptRight ? 1 : 0) + (rebuild.keptLeft ? 1 : 0)
        heartbeat.watch(id: id, epoch: membership.epoch, peers: membership.neighbours(of: id))
    }

    /// A collective failed inside the transport (any thread): the training thread sees the
    /// error itself and reports it to the core; this only logs it.
    func transportFailed(_ error: CollectiveError) {
        logger.debug("member \(id): \(error)")
    }

    /// The member ids a collective error blames (a closed connection names its neighbour; a
    /// timeout names nobody: the heartbeats find a hung member).
    func suspects(of error: CollectiveError) -> [Int] {
        guard error.code == .connectionLost, let peer = error.peer, let members = ringMembership?.members, members.indices.contains(peer) else {
            return []
        }
        return [members[peer].id]
    }
}
