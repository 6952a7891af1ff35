import PhalanxCheckpoint
import PhalanxCollectives
import PhalanxNN
import PhalanxTensor

/// Everything that decides the next step — parameters, optimizer state, the step (which fixes
/// the data cursor through `GlobalBatchSampler`) and any counters — with one committed copy.
///
/// `commit()` copies the live buffers into the committed copy after a step succeeded;
/// `restore()` brings the committed copy back after a step was discarded; `sync` sends one
/// member's state to all (after a change of members, and to joiners) over the ring.
///
/// ```swift
/// let state = ElasticState(model: model, optimizer: optimizer)
/// ```
///
/// Committing copies the state (`.snapshot`, safe for any step) unless the policy is
/// `.inPlace`: then nothing is copied, and the step closure promises not to change the state
/// before its last collective has succeeded (the usual forward → backward → all-reduce →
/// update), so a failed step has left the state untouched.
public final class ElasticState {
    /// How commits protect the state against a step that fails halfway.
    public enum CommitPolicy: Sendable, Equatable {
        /// Each commit copies every buffer; a failed step is rolled back from the copy. Costs one
        /// copy of the state per step.
        case snapshot
        /// No copy: the step closure changes the state only after its last collective succeeded.
        case inPlace
    }

    /// The policy in force.
    public let policy: CommitPolicy

    /// One registered buffer and the names of the tensors in it (for checkpoints).
    public struct Entry {
        /// The group name, e.g. "model".
        public let name: String
        /// The live buffer training updates.
        public let buffer: FlatBuffer
        /// The tensors in it: name, shape, offset (elements).
        public let tensors: [(name: String, shape: [Int], offset: Int)]
        let committed: FlatBuffer
    }

    private struct Counter {
        let name: String
        let get: () -> Int
        let set: (Int) -> Void
    }

    /// The number of committed steps: the next step to run.
    public private(set) var step: Int
    private(set) var entries: [Entry] = []
    private var counters: [Counter] = []
    private var committedCounters: [Int] = []
    /// True when the live buffers may differ from the committed copy.
    private var dirty = false
    /// True when a synchronisation failed halfway under `.inPlace`: the committed state itself
    /// is partly overwritten, so this member cannot be anyone's source until it is synced.
    public private(set) var damaged = false

    /// Makes an empty state at `step`.
    public init(step: Int = 0, policy: CommitPolicy = .snapshot) {
        self.step = step
        self.policy = policy
    }

    /// A state holding a model's parameters and an optimizer's state and step count.
    public convenience init(model: Sequential, optimizer: any Optimizer, step: Int = 0, policy: CommitPolicy = .snapshot) {
        self.init(step: step, policy: policy)
        register("model", model.store.values, tensors: model.store.layout.entries.map { ($0.name, $0.shape, $0.offset) })
        register("optimizer", optimizer.state, tensors: optimizer.stateLayout.entries.map { ($0.name, $0.shape, $0.offset) })
        registerCounter("optimizer.stepCount", get: { optimizer.stepCount }, set: { optimizer.stepCount = $0 })
        // Dropout's random state: kept, synced and checkpointed with the rest.
        for (name, dropout) in model.dropouts {
            registerCounter("random.\(name).draw", get: { dropout.draw }, set: { dropout.draw = $0 })
        }
        commit()
    }

    /// Adds a buffer to the state (call before training; the committed copy starts equal).
    public func register(_ name: String, _ buffer: FlatBuffer, tensors: [(name: String, shape: [Int], offset: Int)]) {
        // In place, the live buffer is its own committed copy.
        let committed = policy == .inPlace ? buffer : FlatBuffer(count: buffer.count)
        if buffer.count > 0, committed !== buffer { committed.baseAddress.update(from: buffer.baseAddress, count: buffer.count) }
        entries.append(Entry(name: name, buffer: buffer, tensors: tensors, committed: committed))
    }

    /// Adds an integer that belongs to the state (an optimizer's step count, a custom cursor).
    public func registerCounter(_ name: String, get: @escaping () -> Int, set: @escaping (Int) -> Void) {
        counters.append(Counter(name: name, get: get, set: set))
        committedCounters.append(get())
    }

    /// Number of Float elements in all registered buffers.
    public var elementCount: Int { entries.reduce(0) { $0 + $1.buffer.count } }

    /// Records the live state as committed after step `step` succeeded; the step advances.
    public func commitStep() {
        step += 1
        commit()
    }

    /// Copies the live buffers and counters into the committed copy (at the current step).
    public func commit() {
        for entry in entries where entry.buffer.count > 0 && entry.committed !== entry.buffer {
            entry.committed.baseAddress.update(from: entry.buffer.baseAddress, count: entry.buffer.count)
        }
        committedCounters = counters.map { $0.get() }
        dirty = false
    }

    /// Marks the live state as changed since the last commit (the loop does this before a step).
    func markDirty() { dirty = true }

    /// Brings back the committed buffers and counters (a discarded step leaves no trace).
    public func restore() {
        guard dirty, policy == .snapshot else { return }
        for entry in entries where entry.buffer.count > 0 {
            entry.buffer.baseAddress.update(from: entry.committed.baseAddress, count: entry.buffer.count)
        }
        for (counter, value) in zip(counters, committedCounters) { counter.set(value) }
        dirty = false
    }

    /// Sends the committed state of rank `root` to every rank (step and counters first, then
    /// the buffers bit for bit), and commits it everywhere. Any communicator serves: the
    /// elastic ring after a change, or a static TCP or MPI job at its start.
    ///
    /// A failure leaves each receiver with a usable state where it can: under `.snapshot` the
    /// commit is restored; under `.inPlace` a receiver that already held the source's step
    /// keeps it (the bytes written into it were the same bytes; step 0 excepted), and only a receiver that was
    /// behind (or a joiner) is marked `damaged`, once buffer bytes may have reached it.
    /// - Throws: `CollectiveError` from the broadcasts (a failure during the transfer).
    public func sync(over communicator: any Communicator, from root: Int, options: CollectiveOptions = .default) throws {
        restore()
        let values = [step] + counters.map { $0.get() }
        var words = [Float](repeating: 0, count: 2 * values.count)
        // Integers travel as bit patterns in Float slots: a broadcast copies bits, never adds.
        for (i, value) in values.enumerated() {
            let bits = UInt64(bitPattern: Int64(value))
            words[2 * i] = Float(bitPattern: UInt32(truncatingIfNeeded: bits >> 32))
            words[2 * i + 1] = Float(bitPattern: UInt32(truncatingIfNeeded: bits))
        }
        try words.withUnsafeMutableBufferPointer { try communicator.broadcast($0, from: root, options: options) }
        let received = (0..<values.count).map { i in
            Int(Int64(bitPattern: UInt64(words[2 * i].bitPattern) << 32 | UInt64(words[2 * i + 1].bitPattern)))
        }
        // (Step 0 excepted: fresh processes may have been initialised differently.)
        let sameState = communicator.rank == root || (received[0] == step && step > 0 && !damaged)
        // From here the live buffers are being overwritten.
        markDirty()
        do {
            for entry in entries where entry.buffer.count > 0 {
                try communicator.broadcast(entry.buffer.buffer, from: root, options: options)
            }
        } catch {
            if policy == .inPlace {
                if !sameState { damaged = true }
            } else {
                restore()
            }
            throw error
        }
        step = received[0]
        for (counter, value) in zip(counters, received.dropFirst()) { counter.set(value) }
        commit()
        damaged = false
    }

    /// What this state holds, as the membership protocol sees it.
    public var holding: Holding { Holding(step: step, intact: !damaged) }

    /// The committed state as a checkpoint snapshot (a copy: the caller may write it later).
    public func checkpointSnapshot(epoch: Int, dataCursor: Int, worldSize: Int) throws -> CheckpointSnapshot {
        let groups = entries.map { entry in
            CheckpointSnapshot.Group(
                entries: entry.tensors, copying: UnsafeBufferPointer(start: entry.committed.baseAddress, count: entry.committed.count))
        }
        var extra: [String: String] = [:]
        for (counter, value) in zip(counters, committedCounters) { extra[counter.name] = String(value) }
        let optimizerSteps = zip(counters, committedCounters).first { $0.0.name == "optimizer.stepCount" }?.1 ?? 0
        let metadata = TrainingMetadata(
            step: step, epoch: epoch, dataCursor: dataCursor, optimizerStepCount: optimizerSteps, worldSize: worldSize, extra: extra)
        return try CheckpointSnapshot(groups: groups, metadata: metadata)
    }

    /// Loads a checkpoint into the live buffers, counters and step, and commits it.
    /// - Throws: `CheckpointError` when a tensor is missing or has another shape.
    public func load(_ checkpoint: LoadedCheckpoint) throws {
        for entry in entries { try checkpoint.restore(entry.tensors, into: entry.buffer.buffer) }
        for counter in counters {
            if let text = checkpoint.metadata.extra[counter.name], let value = Int(text) { counter.set(value) }
        }
        step = checkpoint.metadata.step
        commit()
    }
}
