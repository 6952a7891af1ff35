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

/// A 64-bit checksum of the data section: four FNV-1a lanes over the four 8-byte little-endian
/// words of each 32-byte block (independent multiply chains, so it runs near memory speed), the
/// tail bytes folded into lane 0, the lanes combined by FNV. Enough to catch torn or bit-flipped
/// files; not a defence against an attacker who can write the checkpoint directory.
enum Checksum {
    static let prime: UInt64 = 0x100_0000_01b3
    static let basis: UInt64 = 0xcbf2_9ce4_8422_2325

    /// The checksum of the concatenation of every `update`.
    struct Stream {
        private var lanes: (UInt64, UInt64, UInt64, UInt64) = (basis, basis &+ 1, basis &+ 2, basis &+ 3)
        private var carry = [UInt8]()

        mutating func update(_ bytes: UnsafeRawBufferPointer) {
            var index = 0
            if !carry.isEmpty {
                while carry.count < 32 && index < bytes.count {
                    carry.append(bytes[index])
                    index += 1
                }
                if carry.count == 32 {
                    carry.withUnsafeBytes { absorb($0, blocks: 1) }
                    carry.removeAll(keepingCapacity: true)
                }
            }
            let blocks = (bytes.count - index) / 32
            if blocks > 0, let base = bytes.baseAddress {
                absorb(UnsafeRawBufferPointer(start: base + index, count: blocks * 32), blocks: blocks)
            }
            index += blocks * 32
            while index < bytes.count {
                carry.append(bytes[index])
                index += 1
            }
        }

        private mutating func absorb(_ bytes: UnsafeRawBufferPointer, blocks: Int) {
            guard let base = bytes.baseAddress else { return }
            var (a, b, c, d) = lanes
            for block in 0..<blocks {
                let o = 32 * block
                a = (a ^ UInt64(littleEndian: base.loadUnaligned(fromByteOffset: o, as: UInt64.self))) &* prime
                b = (b ^ UInt64(littleEndian: base.loadUnaligned(fromByteOffset: o + 8, as: UInt64.self))) &* prime
                c = (c ^ UInt64(littleEndian: base.loadUnaligned(fromByteOffset: o + 16, as: UInt64.self))) &* prime
                d = (d ^ UInt64(littleEndian: base.loadUnaligned(fromByteOffset: o + 24, as: UInt64.self))) &* prime
            }
            lanes = (a, b, c, d)
        }

        func finalize() -> UInt64 {
            var (a, b, c, d) = lanes
            for byte in carry { a = (a ^ UInt64(byte)) &* prime }
            var result = basis
            for lane in [a, b, c, d] { result = (result ^ lane) &* prime }
            return result
        }
    }

    /// The checksum of `bytes`.
    static func of(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var stream = Stream()
        stream.update(bytes)
        return stream.finalize()
    }
}
