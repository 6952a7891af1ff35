/// A height and a width: a kernel, a stride or a padding of a 2-D layer. An integer literal
/// means the same in both directions (`kernel: 3` is 3×3).
public struct Size2D: Sendable, Equatable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    /// Along the rows.
    public var height: Int
    /// Along the columns.
    public var width: Int

    /// `height` × `width`.
    public init(_ height: Int, _ width: Int) {
        self.height = height
        self.width = width
    }

    /// `value` × `value`.
    public init(integerLiteral value: Int) {
        self.init(value, value)
    }

    /// `(h, w)`.
    public var description: String { "(\(height), \(width))" }
}
