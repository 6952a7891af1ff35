/// What a checkpoint records besides tensors, so that a restarted job continues exactly:
/// the step, where the data stream stands, the random state and who wrote it.
public struct TrainingMetadata: Codable, Sendable, Equatable {
    /// Steps completed (the next step to run).
    public var step: Int
    /// The epoch of the next step.
    public var epoch: Int
    /// Samples consumed so far (the data cursor), for loaders that stream.
    public var dataCursor: Int
    /// The training RNG's state (`SeededGenerator.state`), four words.
    public var rngState: [UInt64]
    /// The optimizer's step count (Adam's bias correction and SGD's first-step rule need it).
    public var optimizerStepCount: Int
    /// How many ranks trained when it was written.
    public var worldSize: Int
    /// The Phalanx version that wrote it.
    public var libraryVersion: String
    /// Free-form strings for the user (learning-rate schedule position, run name, …).
    public var extra: [String: String]

    /// Makes metadata.
    public init(
        step: Int, epoch: Int = 0, dataCursor: Int = 0, rngState: [UInt64] = [], optimizerStepCount: Int = 0, worldSize: Int = 1,
        libraryVersion: String = CheckpointFormat.libraryVersion, extra: [String: String] = [:]
    ) {
        self.step = step
        self.epoch = epoch
        self.dataCursor = dataCursor
        self.rngState = rngState
        self.optimizerStepCount = optimizerStepCount
        self.worldSize = worldSize
        self.libraryVersion = libraryVersion
        self.extra = extra
    }
}

/// Constants of the checkpoint format.
public enum CheckpointFormat {
    /// The version of the checkpoint layout (bumped on incompatible changes; 2: the checksum is
    /// XXH3-128 over the whole file instead of FNV over the data and the training metadata).
    public static let version = "2"
    /// The Phalanx version recorded in new checkpoints.
    public static let libraryVersion = "0.1.0"
    /// `__metadata__` key of the format version.
    static let formatKey = "phalanx.format"
    /// `__metadata__` key of the JSON-encoded `TrainingMetadata`.
    static let metadataKey = "phalanx.training"
    /// `__metadata__` key of the file's checksum (`CheckpointChecksum`: XXH3-128, 32 hex digits).
    static let checksumKey = "phalanx.checksum"
}
