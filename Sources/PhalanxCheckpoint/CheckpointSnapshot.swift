import PhalanxTensor

/// A frozen copy of everything a checkpoint holds: named tensors (model parameters, optimizer
/// state) in flat arrays, and the training metadata. Taking one is the only work the training
/// thread does for a save: one copy of each flat buffer.
public struct CheckpointSnapshot: @unchecked Sendable {
    /// A named group of tensors packed in one flat array (e.g. all parameters).
    public struct Group: @unchecked Sendable {
        /// `(name, shape, offset)` of each tensor, in order.
        public var entries: [(name: String, shape: [Int], offset: Int)]
        /// All the group's elements.
        public var values: [Float]

        /// Copies `count` elements from `source` under the given entries.
        /// - Precondition-free: entries outside `count` are rejected by `CheckpointSnapshot.init`.
        public init(entries: [(name: String, shape: [Int], offset: Int)], copying source: UnsafeBufferPointer<Float>) {
            self.entries = entries
            values = Array(source)
        }
    }

    /// Copies new values into group `index` in place, reusing its storage when no writer still
    /// holds it (so repeated saves copy into memory that is already mapped: the stall is one
    /// memcpy). Returns false, copying nothing, if `source` has another element count.
    @discardableResult
    public mutating func refill(group index: Int, from source: UnsafeBufferPointer<Float>) -> Bool {
        guard groups.indices.contains(index), groups[index].values.count == source.count, let from = source.baseAddress else {
            return groups.indices.contains(index) && source.isEmpty && groups[index].values.isEmpty
        }
        groups[index].values.withUnsafeMutableBufferPointer { target in
            target.baseAddress?.update(from: from, count: source.count)
        }
        return true
    }

    /// The tensor groups, written in this order (validated by `init`; change values with `refill`).
    public private(set) var groups: [Group]
    /// The training metadata.
    public var metadata: TrainingMetadata

    /// Makes a snapshot.
    /// - Throws: `CheckpointError.malformed` if an entry falls outside its group's values.
    public init(groups: [Group], metadata: TrainingMetadata) throws {
        for group in groups {
            for entry in group.entries {
                var count = 1
                for extent in entry.shape {
                    let (product, overflow) = count.multipliedReportingOverflow(by: extent)
                    guard extent >= 0, !overflow else {
                        throw CheckpointError(.malformed, path: "(snapshot)", "'\(entry.name)' has an invalid shape \(entry.shape)")
                    }
                    count = product
                }
                let (end, overflow) = entry.offset.addingReportingOverflow(count)
                guard entry.offset >= 0, !overflow, end <= group.values.count else {
                    throw CheckpointError(.malformed, path: "(snapshot)", "'\(entry.name)' falls outside its group of \(group.values.count) elements")
                }
            }
        }
        self.groups = groups
        self.metadata = metadata
    }

    /// The total number of elements.
    public var elementCount: Int { groups.reduce(0) { $0 + $1.values.count } }
}
