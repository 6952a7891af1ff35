import Foundation
import PhalanxTensor

/// A checkpoint read back and verified (format version, metadata, checksum of every byte).
public final class LoadedCheckpoint: @unchecked Sendable {
    /// The file.
    public let file: SafetensorsFile
    /// The training metadata it carries.
    public let metadata: TrainingMetadata

    /// Opens `path` and verifies it.
    /// - Throws: `CheckpointError` (`.malformed`, `.incompatible`, `.checksumMismatch`, `.io`).
    public init(path: String) throws {
        file = try SafetensorsFile(path: path)
        // The checksum first, when the header has one of this format's length: a corrupted
        // file must not pass for an older format or for unreadable metadata.
        let sealed = CheckpointChecksum.digits(in: file.headerBytes) != nil
        if sealed { try CheckpointChecksum.verify(file) }
        let format = file.metadata[CheckpointFormat.formatKey]
        guard format == CheckpointFormat.version else {
            let earlier = format == "1" ? " (format 1 was written by an earlier Phalanx, whose checksum missed some flipped bits; load its weights with SafetensorsFile)" : ""
            throw CheckpointError(.incompatible, path: path, "format '\(format ?? "none")', this reader knows '\(CheckpointFormat.version)'\(earlier)")
        }
        guard let text = file.metadata[CheckpointFormat.metadataKey],
            let decoded = try? JSONDecoder().decode(TrainingMetadata.self, from: Data(text.utf8))
        else { throw CheckpointError(.incompatible, path: path, "no readable training metadata") }
        metadata = decoded
        if !sealed { try CheckpointChecksum.verify(file) }  // refuses it: no checksum
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
