/// An error from a tensor operation: what was asked and which shapes did not fit.
public enum TensorError: Error, Equatable, Sendable {
    /// Two operands' shapes do not fit `operation`; both shapes are named.
    case shapeMismatch(operation: String, lhs: [Int], rhs: [Int])
    /// A shape is invalid for the reason given (negative extent, wrong element count, …).
    case invalidShape([Int], reason: String)
    /// An axis is out of range for a tensor of the given shape.
    case invalidAxis(Int, shape: [Int])
    /// An operation needs a tensor of a given rank.
    case rankMismatch(operation: String, expected: Int, shape: [Int])
    /// A range (for example of rows) is out of bounds.
    case outOfRange(operation: String, range: Range<Int>, bound: Int)
}

extension TensorError: CustomStringConvertible {
    /// A one-line message naming the operation and the shapes involved.
    public var description: String {
        switch self {
        case let .shapeMismatch(operation, lhs, rhs):
            return "\(operation): shapes \(lhs) and \(rhs) do not fit"
        case let .invalidShape(shape, reason):
            return "invalid shape \(shape): \(reason)"
        case let .invalidAxis(axis, shape):
            return "axis \(axis) is out of range for shape \(shape)"
        case let .rankMismatch(operation, expected, shape):
            return "\(operation) needs a rank-\(expected) tensor, got shape \(shape)"
        case let .outOfRange(operation, range, bound):
            return "\(operation): range \(range) is outside 0..<\(bound)"
        }
    }
}
