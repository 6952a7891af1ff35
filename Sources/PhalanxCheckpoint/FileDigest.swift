import CXXHash

/// XXH3-128 (xxHash 0.8, from the system's libxxhash) of a stream of bytes: the checksum of
/// checkpoint files, chosen by measured speed (`phalanx-bench checkpoint`, docs/performance.md).
///
/// A non-cryptographic hash: it catches torn, truncated and bit-flipped files (any change goes
/// unnoticed with probability 2⁻¹²⁸), not someone who may write the checkpoint directory.
@_spi(Benchmarking)
public final class FileDigest {
    private let state: OpaquePointer

    /// A digest of nothing yet.
    /// - Throws: `CheckpointError.io` if libxxhash cannot allocate its state.
    public init() throws {
        guard let state = XXH3_createState() else { throw CheckpointError(.io, path: "", "libxxhash could not allocate a hash state") }
        self.state = state
        XXH3_128bits_reset(state)
    }

    deinit { XXH3_freeState(state) }

    /// Adds `bytes`.
    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        XXH3_128bits_update(state, base, bytes.count)
    }

    /// The digest of everything added, as xxHash's canonical form prints it: 32 lowercase hex
    /// digits, the high 64 bits first.
    public var hex: String {
        let value = XXH3_128bits_digest(state)
        return Self.hex(value.high64) + Self.hex(value.low64)
    }

    /// 16 hex digits of `word`, zero-padded.
    public static func hex(_ word: UInt64) -> String {
        let digits = String(word, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// The digest of `bytes` alone.
    public static func of(_ bytes: UnsafeRawBufferPointer) throws -> String {
        let digest = try FileDigest()
        digest.update(bytes)
        return digest.hex
    }
}
