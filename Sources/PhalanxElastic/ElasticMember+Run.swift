import Foundation
import PhalanxCheckpoint
import PhalanxCollectives
import PhalanxTCP

extension ElasticMember {
    /// Runs steps `state.step ..< lastStep`, each through `body`, across the current members,
    /// surviving failures and admitting joiners between steps.
    ///
    /// A step is committed when `body` returns; when it throws a `CollectiveError` (or the
    /// membership protocol stops it) the step is discarded on every member, the members agree
    /// on the next membership, the ring is rebuilt and the newest committed state is taken
    /// before the step is redone. Errors of the user's own making end the run.
    ///
    /// The first call synchronises the state from the first member (after that member resumed
    /// from the newest durable checkpoint in `options.checkpointDirectory`, if any).
    /// - Throws: `ElasticError` when the job cannot go on (below the minimum, evicted without
    ///   `rejoinAfterEviction`, no intact state left), or what `body` throws other than
    ///   collective failures.
    @discardableResult
    public func run(state: ElasticState, until lastStep: Int, body: (ElasticStep) throws -> Void) throws -> ElasticRunSummary {
        var loop = RunLoopState()
        lock.lock()
        let resumed = route(core.setLastStep(lastStep))
        let initial = core.decisions.isEmpty && core.isMember && core.membership.epoch == 1 && state.step == 0 && !ranBefore
        let first = core.membership.position(of: id) == 0
        ranBefore = true
        lock.unlock()
        perform(resumed)
        if let directory = options.checkpointDirectory {
            let store = try CheckpointStore(directory: directory, keep: options.checkpointsKept)
            if initial, first {
                let (latest, skipped) = store.latestValid()
                for reason in skipped { logger.warning("skipping checkpoint: \(reason)") }
                if let latest {
                    try state.load(latest)
                    logger.info("member \(id) resumed from \(latest.file.path) at step \(state.step)")
                }
            }
            let metrics = self.metrics
            metrics.expectCheckpoints(every: options.checkpointEvery)
            checkpointWriter = AsyncCheckpointWriter(store: store) { [logger] path, step, took in
                metrics.checkpointWritten(path: path, step: step, took: took)
                logger.info("checkpoint step \(step): \(path)")
            }
        }
        defer { try? checkpointWriter?.close() }
        // Not ready once `run` returns (finished, stopped or failed).
        defer { metrics.notReady() }
        if initial { try synchronizeInitially(state) }
        while true {
            guard let instruction = try nextInstruction() else {
                state.restore()
                return loop.summary(changes: changes, stopped: true)
            }
            logger.debug("member \(id) takes \(instruction)")
            switch instruction {
            case let .installRing(membership):
                lock.lock()
                id = core.id ?? id
                let decision = core.decisions.last
                lock.unlock()
                pendingRing = membership
                noteAgreed(membership, decision: decision, state: state)
            case let .synchronize(source, _):
                synchronize(state, from: source)
            case let .restore(step):
                state.restore()
                if state.step != step { logger.error("member \(id) restored step \(state.step), but the agreement said \(step)") }
            case .train:
                if let stop = try train(state, until: lastStep, loop: &loop, body: body) { return stop }
            case .stopTraining:
                interruption.reset()
                feed(.trainingStopped(holding: reported(state)))
            case let .finished(step):
                if let peersFile { PeersFile.markFinished(step, in: peersFile) }
                announceChange(state)
                return loop.summary(changes: changes, stopped: false)
            case let .stop(reason):
                try stopJob(state, reason: reason)
            case let .evicted(reason):
                guard options.rejoinAfterEviction else {
                    throw ElasticError.evicted(id: id, epoch: ringMembership?.epoch ?? 0, reason: reason)
                }
                evicted(reason, state: state)
            case .send, .armTimer, .publishDirectory, .noQuorum:
                break
            }
        }
    }

    /// The first members' start: everyone takes member 0's state (it may have resumed from a
    /// checkpoint). A failure here is a failure of the first step.
    func synchronizeInitially(_ state: ElasticState) throws {
        do {
            try buildPendingRing()
        } catch {
            let reason = "the first ring could not be built: \((error as? CollectiveError)?.message ?? "\(error)")"
            noteDetected(reason, step: state.step, state: state)
            if !answerStop(state) { feed(.stepFailed(suspects: [], reason: reason)) }
            return
        }
        do {
            try state.sync(over: ring, from: 0, options: collectiveOptions)
            if state.step > 0 { feed(.stepCommitted(step: state.step)) }
        } catch let error as CollectiveError {
            noteDetected(error.message, step: state.step, state: state)
            if !answerStop(state) { feed(.stepFailed(suspects: suspects(of: error), reason: error.message)) }
        }
    }

    /// `.synchronize`: takes the source's committed state over the new ring.
    func synchronize(_ state: ElasticState, from source: Int) {
        if answerStop(state) { return }
        do {
            try buildPendingRing()
            guard let root = ringMembership?.position(of: source) else {
                throw CollectiveError(.invalidArgument, during: nil, rank: ring.rank, peer: nil, message: "the source \(source) is not in the ring")
            }
            try state.sync(over: ring, from: root, options: collectiveOptions)
            holdsJobState = true
            if answerStop(state) { return }
            feed(.transferFinished(holding: reported(state)))
        } catch {
            let failure = error as? CollectiveError
            noteDetected(failure?.message ?? "\(error)", step: state.step, state: state)
            if answerStop(state) { return }
            feed(.transferFailed(holding: reported(state), suspects: failure.map(suspects) ?? [], reason: failure?.message ?? "\(error)"))
        }
    }

    /// `.train`: runs steps until the core stops the data plane, a step fails, or the last step
    /// is committed. Returns a summary when `run` must return (a stop was requested).
    func train(_ state: ElasticState, until lastStep: Int, loop: inout RunLoopState, body: (ElasticStep) throws -> Void) throws -> ElasticRunSummary? {
        do {
            try buildPendingRing()
        } catch {
            let failure = error as? CollectiveError
            noteDetected(failure?.message ?? "\(error)", step: state.step, state: state)
            if !answerStop(state) { feed(.stepFailed(suspects: failure.map(suspects) ?? [], reason: failure?.message ?? "\(error)")) }
            return nil
        }
        announceChange(state)
        let metrics = self.metrics
        while state.step < lastStep {
            if answerStop(state) { return nil }
            if stopRequested {
                state.restore()
                return loop.summary(changes: changes, stopped: true)
            }
            state.markDirty()
            let communicator = ElasticCommunicator(ring: ring, options: collectiveOptions, metrics: metrics)
            let began = Date()
            stepBegan = began
            do {
                try body(ElasticStep(index: state.step, rank: ring.rank, worldSize: ring.worldSize, epoch: ring.epoch, communicator: communicator))
            } catch let failure as CollectiveError where Self.recoverable.contains(failure.code) {
                state.restore()
                loop.discarded(step: state.step)
                metrics.stepDiscarded()
                onStepOutcome?(.discarded(step: state.step, reason: failure.message))
                noteDetected(failure.message, step: state.step, state: state)
                if stopRequested { return loop.summary(changes: changes, stopped: true) }
                if loop.repeatedDiscards > Self.discardLimit {
                    throw ElasticError.recoveryFailed(step: state.step, reason: "step \(state.step) failed \(loop.repeatedDiscards) times in a row; last cause: \(failure.message)")
                }
                if !answerStop(state) { feed(.stepFailed(suspects: suspects(of: failure), reason: failure.message)) }
                return nil
            }
            state.commitStep()
            stepBegan = nil
            loop.committed()
            metrics.stepCommitted(step: state.step, worldSize: ring.worldSize, epoch: ring.epoch, seconds: Date().timeIntervalSince(began))
            metrics.connectionsRefused(total: node.refusedConnections)
            onStepOutcome?(.committed(step: state.step - 1, worldSize: ring.worldSize))
            try maybeCheckpoint(state)
            if answerStop(state) { return nil }
            feed(.stepCommitted(step: state.step))
        }
        return nil
    }

    /// `.stop`: the job ends here; below the minimum, the source saves the state first.
    func stopJob(_ state: ElasticState, reason: String) throws -> Never {
        lock.lock()
        let decision = core.decisions.last
        let finishedAt = core.jobFinishedAt
        lock.unlock()
        if let finishedAt { throw ElasticError.jobFinished(step: finishedAt) }
        if case let .belowMinimum(members, minimum) = decision?.stop {
            let path = decision?.source == id ? try saveNow(state, worldSize: members) : nil
            throw ElasticError.belowMinimum(members: members, minimum: minimum, step: state.step, checkpoint: path)
        }
        throw ElasticError.recoveryFailed(step: state.step, reason: reason)
    }

    /// Left out of a membership: the ring is gone; the core asks to be admitted again.
    func evicted(_ reason: String, state: ElasticState) {
        noteDetected(reason, step: state.step, state: state)
        change?.rejoined = true
        transport?.close()
        transport = nil
        ring = RingCommunicator(transport: LoneTransport(), epoch: 0)
        ringMembership = nil
        heartbeat.watch(id: MemberNode.newcomerID, epoch: 0, peers: [])
        interruption.reset()
    }

    /// What this member tells the protocol it holds: a newcomer holds nothing of the job until
    /// a transfer gave it the state (its freshly built model is no one's reference).
    func reported(_ state: ElasticState) -> Holding {
        holdsJobState ? state.holding : Holding(step: state.step, intact: false)
    }

    /// Collective failures that a change of members can cure; anything else (a size mismatch,
    /// an invalid argument) is the caller's and ends the run.
    static let recoverable: [CollectiveError.Code] = [.connectionLost, .timeout, .peerAborted, .closed, .protocolViolation]
    /// Consecutive discards of one step, with no member lost, after which `run` gives up.
    static let discardLimit = 8

    /// Hands a durable checkpoint to the background writer every `checkpointEvery` steps; only
    /// the first member in ring order writes.
    func maybeCheckpoint(_ state: ElasticState) throws {
        guard let writer = checkpointWriter, options.checkpointEvery > 0, state.step % options.checkpointEvery == 0 else { return }
        guard ring.rank == 0 else { return metrics.checkpointTaken(step: state.step) }
        let start = Date()
        try writer.submit(try state.checkpointSnapshot(epoch: 0, dataCursor: state.step, worldSize: ring.worldSize))
        onCheckpoint?(state.step, start, Date())
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

/// Counts of one `run`.
struct RunLoopState {
    var committedSteps = 0
    var discardedSteps = 0
    var repeatedDiscards = 0
    var lastDiscarded = -1

    mutating func committed() {
        committedSteps += 1
        repeatedDiscards = 0
    }

    mutating func discarded(step: Int) {
        discardedSteps += 1
        repeatedDiscards = step == lastDiscarded ? repeatedDiscards + 1 : 1
        lastDiscarded = step
    }

    func summary(changes: [MembershipChange], stopped: Bool) -> ElasticRunSummary {
        ElasticRunSummary(committedSteps: committedSteps, discardedSteps: discardedSteps, changes: changes, stopped: stopped)
    }
}
