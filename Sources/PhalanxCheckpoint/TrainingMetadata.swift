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
    /// The version of the checkpoint layout (bumped on incompatible changes).
    public static let version = "1"
    /// The Phalanx version recorded in new checkpoints.
    public static let libraryVersion = "0.1.0"
    /// `__metadata__` key of the format version.
    static let formatKey = "phalanx.format"
    /// `__metadata__` key of the JSON-encoded `TrainingMetadata`.
    static let metadataKey = "phalanx.training"
    /// `__metadata__` key of the data checksum (FNV-1a 64, hex).
    static let checksumKey = "phalanx.checksum"
}

/// FNV-1a over 8-byte little-endian words (then the tail bytes), 64-bit: cheap (about a word
/// per cycle), and enough to catch torn or bit-flipped files; it is not a defence against an
/// attacker who can write the checkpoint directory.
enum Checksum {
    /// The same hash as `fnv1a` over the concatenation of every `update`.
    struct Stream {
        private(set) var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        private var carry: UInt64 = 0
        private var carryCount = 0

        mutating func update(_ bytes: UnsafeRawBufferPointer) {
            var index = 0
            while carryCount > 0 && carryCount < 8 && index < bytes.count {
                carry |= UInt64(bytes[index]) << (8 * UInt64(carryCount))
                carryCount += 1
                index += 1
            }
            if carryCount == 8 {
                hash = (hash ^ carry) &* 0x100_0000_01b3
                carry = 0
                carryCount = 0
            }
            let words = (bytes.count - index) / 8
            if let base = bytes.baseAddress {
                for i in 0..<words {
                    hash = (hash ^ UInt64(littleEndian: base.loadUnaligned(fromByteOffset: index + 8 * i, as: UInt64.self))) &* 0x100_0000_01b3
                }
            }
            index += 8 * words
            while index < bytes.count {
                carry |= UInt64(bytes[index]) << (8 * UInt64(carryCount))
                carryCount += 1
                index += 1
            }
        }

        func finalize() -> UInt64 {
            var result = hash
            for i in 0..<carryCount { result = (result ^ ((carry >> (8 * UInt64(i))) & 0xFF)) &* 0x100_0000_01b3 }
            return result
        }
    }

    static func fnv1a(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
        var hash = seed
        // Eight bytes at a time, then the tail: the same value on every host of one endianness.
        let words = bytes.count / 8
        if let base = bytes.baseAddress {
            for i in 0..<words {
                hash = (hash ^ UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))) &* 0x100_0000_01b3
            }
        }
        for i in (words * 8)..<bytes.count { hash = (hash ^ UInt64(bytes[i])) &* 0x100_0000_01b3 }
        return hash
    }
}
