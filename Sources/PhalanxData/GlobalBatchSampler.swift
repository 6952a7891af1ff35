import PhalanxTensor

/// Hands out, for each training step, the fixed global batch and each member's slice of it.
///
/// Every epoch has its own seeded permutation of the dataset (seed derived from `seed` and the
/// epoch). Step `s` belongs to epoch `s / stepsPerEpoch` and takes the next `globalBatchSize`
/// samples of that epoch's permutation (the last step of an epoch may be shorter). The global
/// batch therefore depends only on the step, never on how many members train: member `i` of
/// `n` takes the contiguous part `[⌊i·b/n⌋, ⌊(i+1)·b/n⌋)` of it, so the members' slices are
/// disjoint and their union is the global batch for every `n`. This is what lets a job lose or
/// gain members without losing or repeating a sample.
public struct GlobalBatchSampler: Sendable, Equatable {
    /// The number of samples in the dataset.
    public let datasetSize: Int
    /// Samples per global batch (the last batch of an epoch may hold fewer).
    public let globalBatchSize: Int
    /// The seed from which every epoch's permutation is derived.
    public let seed: UInt64

    /// Makes a sampler.
    /// - Throws: `DataError.invalidSampler` for an empty dataset or a batch size below 1.
    public init(datasetSize: Int, globalBatchSize: Int, seed: UInt64) throws {
        guard datasetSize > 0 else { throw DataError.invalidSampler(reason: "the dataset is empty") }
        guard globalBatchSize > 0 else { throw DataError.invalidSampler(reason: "globalBatchSize \(globalBatchSize) < 1") }
        self.datasetSize = datasetSize
        self.globalBatchSize = globalBatchSize
        self.seed = seed
    }

    /// Steps per epoch: ⌈datasetSize / globalBatchSize⌉.
    public var stepsPerEpoch: Int { (datasetSize + globalBatchSize - 1) / globalBatchSize }

    /// The epoch that step `step` belongs to.
    public func epoch(ofStep step: Int) -> Int { step / stepsPerEpoch }

    /// The permutation of the dataset used in `epoch`.
    public func permutation(epoch: Int) -> [Int] {
        var mix = seed ^ (UInt64(truncatingIfNeeded: epoch) &* 0x9E37_79B9_7F4A_7C15)
        return Permutation.shuffled(count: datasetSize, seed: SeededGenerator.splitMix64(&mix))
    }

    /// The sample indices of the global batch of `step` (step ≥ 0).
    /// - Throws: `DataError.invalidSampler` for a negative step.
    public func globalBatch(step: Int) throws -> [Int] {
        guard step >= 0 else { throw DataError.invalidSampler(reason: "step \(step) < 0") }
        let within = step % stepsPerEpoch
        let start = within * globalBatchSize
        let end = min(start + globalBatchSize, datasetSize)
        return Array(permutation(epoch: epoch(ofStep: step))[start..<end])
    }

    /// The range of positions in a global batch of `batchSize` that member `position` of
    /// `members` takes: `[⌊position·b/members⌋, ⌊(position+1)·b/members⌋)`. Empty when
    /// `members < 1` or `position` is outside `0..<members`.
    public static func sliceRange(batchSize: Int, position: Int, members: Int) -> Range<Int> {
        guard members >= 1, position >= 0, position < members, batchSize > 0 else { return 0..<0 }
        return (position * batchSize / members)..<((position + 1) * batchSize / members)
    }

    /// The size of the global batch of `step`: `globalBatchSize`, except for the last step of an
    /// epoch, which takes what is left. Pass it as the loss normaliser so that the members'
    /// summed gradients equal the gradient of the global batch mean.
    public func globalBatchCount(step: Int) -> Int {
        let within = Swift.max(step, 0) % stepsPerEpoch
        return Swift.min(globalBatchSize, datasetSize - within * globalBatchSize)
    }

    /// The sample indices that member `position` of `members` trains on at `step`.
    /// - Throws: `DataError.invalidSampler` if `members < 1` or `position` is outside `0..<members`.
    public func indices(step: Int, position: Int, members: Int) throws -> [Int] {
        guard members >= 1 else { throw DataError.invalidSampler(reason: "members \(members) < 1") }
        guard position >= 0, position < members else {
            throw DataError.invalidSampler(reason: "position \(position) outside 0..<\(members)")
        }
        let batch = try globalBatch(step: step)
        return Array(batch[GlobalBatchSampler.sliceRange(batchSize: batch.count, position: position, members: members)])
    }
}
