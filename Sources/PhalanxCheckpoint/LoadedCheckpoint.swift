import Foundation
import PhalanxTensor

/// A checkpoint read back and verified (format version, metadata, checksum of every data byte).
public final class LoadedCheckpoint: @unchecked Sendable {
    /// The file.
    public let file: SafetensorsFile
    /// The training metadata it carries.
    public let metadata: TrainingMetadata

    /// Opens `path` and verifies it.
    /// - Throws: `CheckpointError` (`.malformed`, `.incompatible`, `.checksumMismatch`, `.io`).
    public init(path: String) throws {
        file = try SafetensorsFile(path: path)
        guard file.metadata[CheckpointFormat.formatKey] == CheckpointFormat.version else {
            throw CheckpointError(.incompatible, path: path, "format '\(file.metadata[CheckpointFormat.formatKey] ?? "none")', this reader knows '\(CheckpointFormat.version)'")
        }
        guard let text = file.metadata[CheckpointFormat.metadataKey],
            let decoded = try? JSONDecoder().decode(TrainingMetadata.self, from: Data(text.utf8))
        else { throw CheckpointError(.incompatible, path: path, "no readable training metadata") }
        metadata = decoded
        let stored = file.metadata[CheckpointFormat.checksumKey].flatMap { UInt64($0, radix: 16) }
        var stream = Checksum.Stream()
        stream.update(file.dataBytes)
        Data(text.utf8).withUnsafeBytes { stream.update($0) }
        let actual = stream.finalize()
        guard stored == actual else {
            throw CheckpointError(.checksumMismatch, path: path, "data checksum \(String(actual, radix: 16)) differs from the stored \(file.metadata[CheckpointFormat.checksumKey] ?? "none")")
        }
    }

    /// The step it was written at.
    public var step: Int { metadata.step }

    /// Copies the tensors named in `layout` (name → offset, shape) into `buffer`.
    /// - Throws: `CheckpointError.missingTensor` if a name is absent or has another shape.
    public func restore(_ entries: [(name: String, shape: [Int], offset: Int)], into buffer: UnsafeMutableBufferPointer<Float>) throws {
        for entry in entries {
            guard let found = file.entry(named: entry.name), found.shape == entry.shape else {
                throw CheckpointError(.missingTensor, path: file.path, "'\(entry.name)' \(entry.shape) is not in the checkpoint with that shape")
            }
            let count = found.count
            let (end, overflow) = entry.offset.addingReportingOverflow(count)
            guard entry.offset >= 0, !overflow, end <= buffer.count else {
                throw CheckpointError(.incompatible, path: file.path, "'\(entry.name)' does not fit the destination buffer")
            }
            try file.read(named: entry.name, into: UnsafeMutableBufferPointer(rebasing: buffer[entry.offset..<(entry.offset + count)]))
        }
    }
}
