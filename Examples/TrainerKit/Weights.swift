import Foundation
import Phalanx
import PhalanxCheckpoint

/// Weights in and out as plain safetensors (names as in the model's layout, e.g.
/// "layers.0.weight"), readable by PyTorch and NumPy.
public enum Weights {
    /// Writes `model`'s parameters to `path`, making its directory if it is missing.
    /// - Throws: `CheckpointError` when the file cannot be written.
    public static func save(_ model: Sequential, to path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        let base = UnsafeBufferPointer(model.store.values.buffer)
        let sources = model.store.layout.entries.map { entry in
            SafetensorsSource(name: entry.name, shape: entry.shape, values: UnsafeBufferPointer(rebasing: base[entry.range]))
        }
        try SafetensorsWriter.write(sources, metadata: ["format": "phalanx-weights"], toPath: path)
    }

    /// Loads every parameter of `model` from `path` (each name must be there with its shape).
    /// - Throws: `CheckpointError` for a missing tensor, another shape or a corrupt file.
    public static func load(_ model: Sequential, from path: String) throws {
        let file = try SafetensorsFile(path: path)
        let base = model.store.values.buffer
        for entry in model.store.layout.entries {
            try file.read(named: entry.name, into: UnsafeMutableBufferPointer(rebasing: base[entry.range]))
        }
    }
}
