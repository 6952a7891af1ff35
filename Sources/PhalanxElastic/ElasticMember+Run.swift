import Foundation
import PhalanxCheckpoint
import PhalanxCollectives
import PhalanxTCP

extension ElasticMember {
    /// Thrown inside the loop when another thread asked for a membership change.
    struct Interrupted: Error {
        let reason: String
    }

    /// Runs steps `state.step ..< lastStep`, each through `body`, across the current members,
    /// surviving failures and admitting joiners between steps.
    ///
    /// A step is committed when `body` returns; when it throws a `CollectiveError` (or another
    /// member starts a change) the step is discarded on every member, the members agree, the
    /// ring is rebuilt and the newest committed state is restored everywhere before the step
    /// is redone. Errors of the user's own making end the run.
    ///
    /// The first call synchronises the state from the first member (after that member resumed
    /// from the newest durable checkpoint in `options.checkpointDirectory`, if any).
    /// - Throws: `ElasticError` when the job cannot go on (below the minimum, evicted), or
    ///   what `body` throws other than collective failures.
    @discardableResult
    public func run(state: ElasticState, until lastStep: Int, body: (ElasticStep) throws -> Void) throws -> ElasticRunSummary {
        var committed = 0, discarded = 0
        var repeatedDiscards = 0
        if let directory = options.checkpointDirectory {
            let store = try CheckpointStore(directory: directory, keep: options.checkpointsKept)
            if pendingSyncSource == rank, lastDecision == nil {
                let (latest, skipped) = store.latestValid()
                for reason in skipped { logger.warning("skipping checkpoint: \(reason)") }
                if let latest {
                    try state.load(latest)
                    logger.info("member \(id) resumed from \(latest.file.path) at step \(state.step)")
                }
            }
            checkpointWriter = AsyncCheckpointWriter(store: store) { [logger] path, step in logger.info("checkpoint step \(step): \(path)") }
        }
        defer { try? checkpointWriter?.close() }
        var pendingChange: MembershipChange?
        while true {
            do {
                if let root = pendingSyncSource {
                    try state.sync(over: ring, from: root, options: collectiveOptions)
                    pendingSyncSource = nil
                }
                if var change = pendingChange {
                    change.restoredAt = Date()
                    changes.append(change)
                    pendingChange = nil
                    onMembershipChange?(change)
                }
                guard state.step < lastStep else { break }
                if stopRequested { return ElasticRunSummary(committedSteps: committed, discardedSteps: discarded, changes: changes, stopped: true) }
                if let stop = interruption.current { throw Interrupted(reason: stop.reason) }
                state.markDirty()
                let communicator = ElasticCommunicator(ring: ring, options: collectiveOptions)
                try body(ElasticStep(index: state.step, rank: ring.rank, worldSize: ring.worldSize, epoch: ring.epoch, communicator: communicator))
                state.commitStep()
                committed += 1
                repeatedDiscards = 0
                onStepOutcome?(.committed(step: state.step - 1, worldSize: ring.worldSize))
                try maybeCheckpoint(state)
            } catch {
                let cause: String
                var suspects: Set<Int> = []
                switch error {
                case let failure as CollectiveError where ElasticMember.recoverable.contains(failure.code):
                    cause = failure.message
                    // A closed connection names the dead neighbour; a timeout does not (the ring
                    // stalls behind a hung member): heartbeats name that one.
                    if failure.code == .connectionLost, let peer = failure.peer, peer < membership.members.count {
                        suspects.insert(membership.members[peer].id)
                    }
                case let interrupted as Interrupted:
                    cause = interrupted.reason
                default:
                    throw error
                }
                discarded += 1
                repeatedDiscards += 1
                let step = state.step
                onStepOutcome?(.discarded(step: step, reason: cause))
                if stopRequested {
                    state.restore()
                    return ElasticRunSummary(committedSteps: committed, discardedSteps: discarded, changes: changes, stopped: true)
                }
                // The same step failing again and again with nobody lost is not a membership
                // problem: stop instead of recovering forever.
                if repeatedDiscards > ElasticMember.discardLimit {
                    dismissPending("member \(id) is stopping")
                    throw ElasticError.recoveryFailed(step: step, reason: "step \(step) failed \(repeatedDiscards) times in a row; last cause: \(cause)")
                }
                do {
                    let change = try recover(cause: cause, suspects: suspects, state: state, interruptedStep: step)
                    if !change.lost.isEmpty { repeatedDiscards = 0 }
                    pendingChange = change
                } catch let ElasticError.evicted(evictedID, epoch, reason) where options.rejoinAfterEviction {
                    logger.warning("member \(evictedID) was evicted at epoch \(epoch) (\(reason)); asking to join again")
                    let previous = membership.ids
                    let detectedAt = Date()
                    try rejoin(state: state)
                    let now = Date()
                    pendingChange = MembershipChange(
                        epoch: membership.epoch, previousMembers: previous, members: membership.ids, lost: [], joined: [id],
                        reason: "rejoined as member \(id) after eviction (\(reason))", redoStep: state.step, interruptedStep: step,
                        rank: ring.rank, worldSize: ring.worldSize, keptConnections: 0,
                        detectedAt: detectedAt, agreedAt: now, rebuiltAt: now, restoredAt: now)
                }
            }
        }
        return ElasticRunSummary(committedSteps: committed, discardedSteps: discarded, changes: changes)
    }

    /// Collective failures that a change of members can cure; anything else (a size mismatch,
    /// an invalid argument) is the caller's and ends the run.
    static let recoverable: [CollectiveError.Code] = [.connectionLost, .timeout, .peerAborted, .closed, .protocolViolation]
    /// Consecutive discards of one step, with no member lost, after which `run` gives up.
    static let discardLimit = 8

    /// Joins again under a new id after an eviction, through the members last known.
    func rejoin(state: ElasticState) throws {
        let known = membership.members.filter { $0.id != id }.map { MemberAddress(id: MemberNode.newcomerID, host: $0.host, port: $0.port) }
        dismissPending("member \(id) was evicted and is joining again")
        transport?.close()
        transport = nil
        lock.lock()
        suspected = []
        id = MemberNode.newcomerID
        // Between memberships: joiners asking here are sent elsewhere, not to this process.
        sharedMembership = Membership(epoch: 0, members: [], nextID: 0)
        lastDecision = nil
        lock.unlock()
        heartbeat.watch(id: MemberNode.newcomerID, epoch: 0, peers: [])
        interruption.reset()
        node.memberID = MemberNode.newcomerID
        try admit(candidates: known)
        interruption.reset()
    }

    /// Hands a durable checkpoint to the background writer every `checkpointEvery` steps; only
    /// the first member in ring order writes.
    func maybeCheckpoint(_ state: ElasticState) throws {
        guard let writer = checkpointWriter, options.checkpointEvery > 0, state.step % options.checkpointEvery == 0, ring.rank == 0 else { return }
        let start = Date()
        try writer.submit(try state.checkpointSnapshot(epoch: 0, dataCursor: state.step, worldSize: ring.worldSize))
        onCheckpoint?(state.step, start, Date())
    }
}
