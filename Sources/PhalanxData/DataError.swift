/// An error while loading or indexing data; names the source and what is wrong with it.
public enum DataError: Error, Equatable, Sendable {
    /// A file or resource could not be read.
    case unreadable(path: String, reason: String)
    /// The content does not have the expected format.
    case malformed(source: String, reason: String)
    /// A sample index is outside the dataset.
    case indexOutOfRange(index: Int, count: Int)
    /// Sampler arguments that cannot work (e.g. a batch size of 0, a position outside the members).
    case invalidSampler(reason: String)
}

extension DataError: CustomStringConvertible {
    /// A one-line message.
    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "cannot read \(path): \(reason)"
        case let .malformed(source, reason): return "\(source) is malformed: \(reason)"
        case let .indexOutOfRange(index, count): return "sample index \(index) is outside 0..<\(count)"
        case let .invalidSampler(reason): return "invalid sampler: \(reason)"
        }
    }
}
