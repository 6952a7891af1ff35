/// A checkpoint or safetensors file that cannot be written or read, with the file and what is
/// wrong, so that a caller can skip it (and say why) instead of crashing or loading garbage.
public struct CheckpointError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of failure.
    public enum Code: String, Sendable, Equatable {
        /// The file could not be opened, mapped, written, synced or renamed.
        case io
        /// The file is shorter than its header says, or its header is not valid.
        case malformed
        /// An entry uses an element type this reader does not convert.
        case unsupportedType
        /// A tensor or entry the caller asked for is not in the file, or has another shape.
        case missingTensor
        /// The data does not match the checksum stored with it.
        case checksumMismatch
        /// The metadata is missing a field or does not fit the model it is restored into.
        case incompatible
    }

    /// The kind of failure.
    public var code: Code
    /// The file concerned.
    public var path: String
    /// What is wrong, in words.
    public var message: String

    /// Makes an error.
    public init(_ code: Code, path: String, _ message: String) {
        self.code = code
        self.path = path
        self.message = message
    }

    /// "checkpoint /dir/step-100.safetensors is malformed: header length 9e18 exceeds the file (1000 bytes)".
    public var description: String { "checkpoint \(path): \(code.rawValue): \(message)" }
}
