import Foundation
import PhalanxTensor

#if canImport(Glibc)
import Glibc
#endif

/// A directory of checkpoints, one safetensors file per save, named `step-<step>.safetensors`.
///
/// Saves are atomic: the file is written under a temporary name, `fsync`ed, renamed into place
/// and the directory `fsync`ed, so a crash at any moment leaves either the previous set of
/// checkpoints or the new one, never a half file under a final name. The last `keep` are kept.
public final class CheckpointStore: @unchecked Sendable {
    /// The directory.
    public let directory: String
    /// How many checkpoints to keep (at least 1).
    public let keep: Int

    /// Opens (and creates) `directory`.
    /// - Throws: `CheckpointError.io` if it cannot be created.
    public init(directory: String, keep: Int = 3) throws {
        self.directory = directory
        self.keep = max(keep, 1)
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw CheckpointError(.io, path: directory, "cannot create the directory: \(error)")
        }
    }

    /// The final path of the checkpoint of `step`.
    public func path(step: Int) -> String { (directory as NSString).appendingPathComponent(String(format: "step-%012d.safetensors", step)) }

    /// Writes `snapshot` atomically and prunes old checkpoints; returns the final path.
    /// - Throws: `CheckpointError.io` (nothing under the final name is touched on failure).
    @discardableResult
    public func save(_ snapshot: CheckpointSnapshot) throws -> String {
        let final = path(step: snapshot.metadata.step)
        let temporary = final + ".tmp-\(getpid())"
        defer { unlink(temporary) }
        try write(snapshot, to: temporary)
        guard rename(temporary, final) == 0 else { throw CheckpointError(.io, path: final, "rename failed: \(String(cString: strerror(errno)))") }
        try syncDirectory()
        prune()
        return final
    }

    private func write(_ snapshot: CheckpointSnapshot, to path: String) throws {
        var sources: [SafetensorsSource] = []
        // `withExtendedLifetime(snapshot)` below keeps the arrays these pointers read alive.
        for group in snapshot.groups {
            let base = group.values.withUnsafeBufferPointer { $0 }
            for entry in group.entries {
                let count = entry.shape.reduce(1, *)
                let slice = UnsafeBufferPointer(start: base.baseAddress.map { $0 + entry.offset }, count: count)
                sources.append(SafetensorsSource(name: entry.name, shape: entry.shape, values: slice))
            }
        }
        let encoded = try JSONEncoder().encode(snapshot.metadata)
        let metadata = [
            CheckpointFormat.formatKey: CheckpointFormat.version,
            CheckpointFormat.metadataKey: String(decoding: encoded, as: UTF8.self),
            CheckpointFormat.checksumKey: CheckpointChecksum.placeholder,
            "step": String(snapshot.metadata.step),
        ]
        // The checksum covers the whole file as written: header (training metadata included,
        // so a flipped bit in the step cannot resume silently), then the tensors in order.
        var header = try SafetensorsWriter.header(for: sources, metadata: metadata, path: path)
        try CheckpointChecksum.seal(&header, data: sources.map { UnsafeRawBufferPointer($0.values) }, path: path)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CheckpointError(.io, path: path, "cannot create: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        try withExtendedLifetime(snapshot) {
            try SafetensorsWriter.write(header: header, sources, toDescriptor: fd, path: path)
        }
        guard fsync(fd) == 0 else { throw CheckpointError(.io, path: path, "fsync failed: \(String(cString: strerror(errno)))") }
    }

    private func syncDirectory() throws {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw CheckpointError(.io, path: directory, "cannot open the directory to sync it") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw CheckpointError(.io, path: directory, "directory fsync failed: \(String(cString: strerror(errno)))") }
    }

    /// Final checkpoint files, newest step first.
    public func checkpointPaths() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix("step-") && $0.hasSuffix(".safetensors") }.sorted(by: >).map { (directory as NSString).appendingPathComponent($0) }
    }

    /// Removes all but the newest `keep` checkpoints, and temporary files of writers that no
    /// longer run (a SIGKILLed save leaves a whole checkpoint's worth of bytes behind).
    private func prune() {
        for old in checkpointPaths().dropFirst(keep) { unlink(old) }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names where name.hasPrefix("step-") {
            guard let marker = name.range(of: ".safetensors.tmp-"), let pid = Int32(name[marker.upperBound...]) else { continue }
            if pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH {
                unlink((directory as NSString).appendingPathComponent(name))
            }
        }
    }

    /// Opens and verifies the checkpoint at `path`: format, metadata, checksum.
    /// - Throws: `CheckpointError` saying what is wrong.
    public func load(path: String) throws -> LoadedCheckpoint {
        try LoadedCheckpoint(path: path)
    }

    /// The newest checkpoint that verifies, and for every newer one the reason it was skipped.
    public func latestValid() -> (checkpoint: LoadedCheckpoint?, skipped: [CheckpointError]) {
        var skipped: [CheckpointError] = []
        for path in checkpointPaths() {
            do { return (try LoadedCheckpoint(path: path), skipped) } catch let error as CheckpointError {
                skipped.append(error)
            } catch {
                skipped.append(CheckpointError(.io, path: path, "\(error)"))
            }
        }
        return (nil, skipped)
    }
}
