import PhalanxCheckpoint

/// Final weights written by trainers (`--save`), compared across runs: the fault tests and the
/// chaos benchmark judge a job by how far its weights are from a fault-free run's.
public enum FinalWeights {
    /// Every tensor of the safetensors file at `path`, flattened in name order.
    /// - Throws: `CheckpointError` when the file cannot be read.
    public static func load(at path: String) throws -> [Float] {
        let file = try SafetensorsFile(path: path)
        var values: [Float] = []
        for entry in file.entries.sorted(by: { $0.name < $1.name }) {
            var part = [Float](repeating: 0, count: entry.count)
            try part.withUnsafeMutableBufferPointer { try file.read(named: entry.name, into: $0) }
            values += part
        }
        return values
    }

    /// ‖a − b‖ / ‖b‖ (infinity when the shapes differ or `b` is empty).
    public static func relativeDifference(_ a: [Float], _ b: [Float]) -> Double {
        guard a.count == b.count, !b.isEmpty else { return .infinity }
        var difference = 0.0, norm = 0.0
        for (x, y) in zip(a, b) {
            difference += Double(x - y) * Double(x - y)
            norm += Double(y) * Double(y)
        }
        return (difference / max(norm, 1e-30)).squareRoot()
    }
}
