import Foundation
import PhalanxTensor

#if canImport(Glibc)
import Glibc
#endif

/// One tensor to write: its name, shape and `Float` elements (read in place, not copied).
public struct SafetensorsSource {
    /// The tensor's name in the file (unique).
    public var name: String
    /// Its shape; the product must equal `values.count`.
    public var shape: [Int]
    /// The elements, row-major.
    public var values: UnsafeBufferPointer<Float>

    /// Makes a source.
    public init(name: String, shape: [Int], values: UnsafeBufferPointer<Float>) {
        self.name = name
        self.shape = shape
        self.values = values
    }
}

/// Writes safetensors files (F32): an 8-byte little-endian header length, a JSON header
/// (`dtype`, `shape`, `data_offsets` per tensor, `__metadata__`) padded with spaces to a multiple
/// of 8 bytes, then the tensors' bytes in header order.
public enum SafetensorsWriter {
    /// The bytes of the header for `sources` and `metadata` (length prefix included).
    /// - Throws: `CheckpointError.malformed` for duplicate names or shapes that do not match.
    public static func header(for sources: [SafetensorsSource], metadata: [String: String], path: String) throws -> [UInt8] {
        var entries: [String: Any] = [:]
        var offset = 0
        for source in sources {
            guard entries[source.name] == nil, source.name != "__metadata__" else {
                throw CheckpointError(.malformed, path: path, "duplicate or reserved tensor name '\(source.name)'")
            }
            guard source.shape.allSatisfy({ $0 >= 0 }), source.shape.reduce(1, *) == source.values.count else {
                throw CheckpointError(.malformed, path: path, "'\(source.name)': shape \(source.shape) does not hold \(source.values.count) elements")
            }
            let bytes = source.values.count * 4
            entries[source.name] = ["dtype": "F32", "shape": source.shape, "data_offsets": [offset, offset + bytes]]
            offset += bytes
        }
        if !metadata.isEmpty { entries["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: entries, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var length = UInt64(json.count).littleEndian
        return withUnsafeBytes(of: &length) { Array($0) } + [UInt8](json)
    }

    /// Writes `sources` to the open file descriptor `fd` (header, then data straight from the
    /// sources' memory with `write(2)` in 64 MiB pieces).
    /// - Throws: `CheckpointError` (`.malformed` for bad sources, `.io` for write failures).
    public static func write(_ sources: [SafetensorsSource], metadata: [String: String], toDescriptor fd: Int32, path: String) throws {
        try write(header: try header(for: sources, metadata: metadata, path: path), sources, toDescriptor: fd, path: path)
    }

    /// Writes `header` (from `header(for:metadata:path:)`, possibly amended in place, same
    /// length) and then `sources` to the open file descriptor `fd`.
    /// - Throws: `CheckpointError.io` for write failures.
    public static func write(header head: [UInt8], _ sources: [SafetensorsSource], toDescriptor fd: Int32, path: String) throws {
        try head.withUnsafeBytes { try writeAll(fd, $0, path: path) }
        for source in sources where source.values.count > 0 {
            // Little-endian hosts (x86-64, arm64) write Float memory as is.
            try writeAll(fd, UnsafeRawBufferPointer(source.values), path: path)
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, base + done, min(bytes.count - done, 64 << 20))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw CheckpointError(.io, path: path, "write failed: \(String(cString: strerror(errno)))") }
            done += n
        }
    }

    /// Writes a whole file at `path` (not atomically: see `CheckpointStore` for that).
    /// - Throws: `CheckpointError`.
    public static func write(_ sources: [SafetensorsSource], metadata: [String: String] = [:], toPath path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CheckpointError(.io, path: path, "cannot create: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        try write(sources, metadata: metadata, toDescriptor: fd, path: path)
    }
}
