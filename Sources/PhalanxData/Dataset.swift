import PhalanxTensor

/// A labelled classification dataset addressable by sample index.
public protocol Dataset {
    /// The number of samples.
    var count: Int { get }
    /// The shape of one sample's features, e.g. `[64]` for 8×8 digits.
    var featureShape: [Int] { get }
    /// The number of classes; labels are in `0..<classCount`.
    var classCount: Int { get }

    /// The samples at `indices`: features `[indices.count] + featureShape` and their labels.
    /// - Throws: `DataError.indexOutOfRange` for an index outside `0..<count`.
    func batch(_ indices: [Int]) throws -> (features: Tensor, labels: [Int])
}

/// A dataset held in memory: features `[count, …]` and `labelsPerSample` labels per sample
/// (one for a classifier; one per token for a sequence model predicting each next token).
public struct InMemoryDataset: Dataset, Sendable {
    /// All features, `[count] + featureShape`.
    public let features: Tensor
    /// All labels, `labelsPerSample` per sample, sample after sample.
    public let labels: [Int]
    /// The number of classes.
    public let classCount: Int
    /// Labels per sample.
    public let labelsPerSample: Int

    /// Makes a dataset.
    /// - Throws: `DataError.malformed` if the counts disagree or a label is out of range.
    public init(features: Tensor, labels: [Int], classCount: Int, labelsPerSample: Int = 1) throws {
        guard labelsPerSample >= 1, features.rank >= 1, features.shape[0] * labelsPerSample == labels.count else {
            throw DataError.malformed(source: "InMemoryDataset", reason: "features \(features.shape) vs \(labels.count) labels (\(labelsPerSample) per sample)")
        }
        if let bad = labels.first(where: { $0 < 0 || $0 >= classCount }) {
            throw DataError.malformed(source: "InMemoryDataset", reason: "label \(bad) outside 0..<\(classCount)")
        }
        self.features = features
        self.labels = labels
        self.classCount = classCount
        self.labelsPerSample = labelsPerSample
    }

    /// The number of samples.
    public var count: Int { features.shape[0] }
    /// One sample's feature shape.
    public var featureShape: [Int] { Array(features.shape.dropFirst()) }

    /// Gathers the samples at `indices`.
    public func batch(_ indices: [Int]) throws -> (features: Tensor, labels: [Int]) {
        if let bad = indices.first(where: { $0 < 0 || $0 >= count }) {
            throw DataError.indexOutOfRange(index: bad, count: count)
        }
        return (try features.gatherRows(indices), labels(of: indices))
    }

    /// The labels of the samples at `indices` (valid ones), in order.
    private func labels(of indices: [Int]) -> [Int] {
        indices.flatMap { labels[($0 * labelsPerSample)..<(($0 + 1) * labelsPerSample)] }
    }

    /// Splits into a training and a held-out set by a seeded shuffle: the first
    /// `round(trainFraction · count)` shuffled samples train, the rest are held out.
    /// - Throws: `DataError.malformed` if `trainFraction` is outside [0, 1].
    public func split(trainFraction: Double, seed: UInt64) throws -> (train: InMemoryDataset, test: InMemoryDataset) {
        guard trainFraction >= 0, trainFraction <= 1 else {
            throw DataError.malformed(source: "split", reason: "trainFraction \(trainFraction) outside [0, 1]")
        }
        let order = Permutation.shuffled(count: count, seed: seed)
        let cut = Int((trainFraction * Double(count)).rounded())
        let train = Array(order[..<cut]), test = Array(order[cut...])
        return (
            try InMemoryDataset(features: try features.gatherRows(train), labels: labels(of: train), classCount: classCount, labelsPerSample: labelsPerSample),
            try InMemoryDataset(features: try features.gatherRows(test), labels: labels(of: test), classCount: classCount, labelsPerSample: labelsPerSample)
        )
    }
}
