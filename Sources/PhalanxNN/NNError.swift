/// An error from a layer, a model, a loss or an optimizer, saying what to fix.
public enum NNError: Error, Equatable, Sendable {
    /// The layer's parameters were used before the model bound them.
    case notBound(layer: String)
    /// `backward` was called without a preceding `forward`.
    case noForward(layer: String)
    /// A layer received a different number (or shape) of parameter slots than it asked for.
    case bindingMismatch(layer: String, expected: Int, got: Int)
    /// A class label is outside `0..<classes`.
    case invalidLabel(index: Int, label: Int, classes: Int)
    /// The number of labels does not match the batch.
    case labelCountMismatch(batch: Int, labels: Int)
    /// No parameter (or state entry) of that name.
    case unknownName(String)
    /// A buffer handed to an optimizer or a model has the wrong element count.
    case sizeMismatch(what: String, expected: Int, got: Int)
    /// A hyper-parameter is invalid.
    case invalidHyperparameter(name: String, value: Double, reason: String)
    /// An index input (a token id) that is not a whole number in `0..<count`.
    case invalidIndex(position: Int, value: Float, count: Int)
}

extension NNError: CustomStringConvertible {
    /// A one-line message.
    public var description: String {
        switch self {
        case let .notBound(layer): return "\(layer) has no parameters yet: put it in a Sequential model first"
        case let .noForward(layer): return "\(layer).backward called before forward"
        case let .bindingMismatch(layer, expected, got): return "\(layer) needs \(expected) parameter slots, got \(got)"
        case let .invalidLabel(index, label, classes): return "label \(label) at index \(index) is outside 0..<\(classes)"
        case let .labelCountMismatch(batch, labels): return "batch has \(batch) rows but \(labels) labels were given"
        case let .unknownName(name): return "no entry named '\(name)'"
        case let .sizeMismatch(what, expected, got): return "\(what): expected \(expected) elements, got \(got)"
        case let .invalidHyperparameter(name, value, reason): return "\(name) = \(value) is invalid: \(reason)"
        case let .invalidIndex(position, value, count): return "index \(value) at position \(position) is not a whole number in 0..<\(count)"
        }
    }
}
