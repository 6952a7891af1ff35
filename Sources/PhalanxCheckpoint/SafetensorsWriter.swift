import Foundation
import PhalanxTensor

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

    /// Writes `sources` to `handle` (header, then data straight from the sources' memory).
    /// - Throws: `CheckpointError` (`.malformed` for bad sources, `.io` for write failures).
    public static func write(_ sources: [SafetensorsSource], metadata: [String: String], to handle: FileHandle, path: String) throws {
        let head = try header(for: sources, metadata: metadata, path: path)
        do {
            try handle.write(contentsOf: Data(head))
            for source in sources where source.values.count > 0 {
                guard let base = source.values.baseAddress else { continue }
                // Little-endian hosts (x86-64, arm64) write Float memory as is.
                try handle.write(contentsOf: Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: base), count: source.values.count * 4, deallocator: .none))
            }
        } catch let error as CheckpointError {
            throw error
        } catch {
            throw CheckpointError(.io, path: path, "write failed: \(error)")
        }
    }

    /// Writes a whole file at `path` (not atomically: see `CheckpointStore` for that).
    /// - Throws: `CheckpointError`.
    public static func write(_ sources: [SafetensorsSource], metadata: [String: String] = [:], toPath path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil) , let handle = FileHandle(forWritingAtPath: path) else {
            throw CheckpointError(.io, path: path, "cannot create the file")
        }
        defer { try? handle.close() }
        try write(sources, metadata: metadata, to: handle, path: path)
    }
}
