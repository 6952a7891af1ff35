/// The names, shapes and offsets of the tensors packed in one flat buffer.
///
/// Entries are contiguous and in order; `totalCount` is the buffer's element count. Names are
/// unique ("layers.0.weight", "optimizer.adam.m.layers.0.weight", …) and are what checkpoints use.
public struct ParameterLayout: Sendable, Equatable {
    /// One named tensor in the buffer.
    public struct Entry: Sendable, Equatable {
        /// The unique name.
        public let name: String
        /// The shape.
        public let shape: [Int]
        /// The first element's offset in the buffer.
        public let offset: Int
        /// The number of elements.
        public var count: Int { shape.reduce(1, *) }
        /// The element range in the buffer.
        public var range: Range<Int> { offset..<(offset + count) }
    }

    /// The entries in buffer order.
    public private(set) var entries: [Entry] = []
    /// The sum of the entries' element counts.
    public private(set) var totalCount = 0
    private var index: [String: Int] = [:]

    /// An empty layout.
    public init() {}

    /// Appends a tensor after the last entry and returns its offset.
    /// - Throws: `NNError.invalidHyperparameter` for a duplicate name or a negative extent.
    @discardableResult
    public mutating func append(name: String, shape: [Int]) throws -> Int {
        guard index[name] == nil else {
            throw NNError.invalidHyperparameter(name: name, value: 0, reason: "duplicate parameter name")
        }
        guard !shape.contains(where: { $0 < 0 }) else {
            throw NNError.invalidHyperparameter(name: name, value: 0, reason: "negative extent in \(shape)")
        }
        var elements = 1
        for extent in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: extent)
            guard !overflow, product <= Int(Int32.max) else {
                throw NNError.invalidHyperparameter(name: name, value: Double(extent), reason: "\(shape) is too large (BLAS takes extents below 2^31)")
            }
            elements = product
        }
        let entry = Entry(name: name, shape: shape, offset: totalCount)
        index[name] = entries.count
        entries.append(entry)
        totalCount += entry.count
        return entry.offset
    }

    /// The entry called `name`, if any.
    public func entry(named name: String) -> Entry? { index[name].map { entries[$0] } }
}
