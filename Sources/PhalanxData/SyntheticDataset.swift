import PhalanxTensor

/// A learnable synthetic classification task for throughput runs and tests: Gaussian features,
/// labels from a fixed random linear map (argmax over classes), all from one seed.
public enum SyntheticDataset {
    /// `samples` rows of `features` values, `classes` classes.
    /// - Throws: `DataError` when a size is not positive.
    public static func make(samples: Int, features: Int, classes: Int = 10, seed: UInt64 = 7) throws -> InMemoryDataset {
        guard samples > 0, features > 0, classes > 1 else {
            throw DataError.malformed(source: "synthetic data", reason: "needs samples > 0, features > 0 and classes > 1 (got \(samples), \(features), \(classes))")
        }
        var generator = SeededGenerator(seed: seed)
        let projection = (0..<(features * classes)).map { _ in generator.nextNormal() }
        var values = [Float](repeating: 0, count: samples * features)
        var labels = [Int](repeating: 0, count: samples)
        var scores = [Float](repeating: 0, count: classes)
        for i in 0..<samples {
            for c in 0..<classes { scores[c] = 0 }
            for j in 0..<features {
                let x = generator.nextNormal()
                values[i * features + j] = x
                for c in 0..<classes { scores[c] += x * projection[j * classes + c] }
            }
            labels[i] = scores.indices.max { scores[$0] < scores[$1] } ?? 0
        }
        return try InMemoryDataset(features: try Tensor(shape: [samples, features], scalars: values), labels: labels, classCount: classes)
    }
}
