/// How an all-reduce combines the ranks' values, element by element.
public enum ReduceOp: String, Sendable, CaseIterable, Codable {
    /// The sum over ranks.
    case sum
    /// The sum over ranks divided by the world size.
    case average
    /// The minimum over ranks.
    case min
    /// The maximum over ranks.
    case max

    /// `destination[i] = destination[i] ⊕ source[i]` for `count` elements (`average` adds;
    /// the division happens once, at the end).
    @inlinable
    public func combine(into destination: UnsafeMutablePointer<Float>, from source: UnsafePointer<Float>, count: Int) {
        switch self {
        case .sum, .average: for i in 0..<count { destination[i] += source[i] }
        case .min: for i in 0..<count { destination[i] = Swift.min(destination[i], source[i]) }
        case .max: for i in 0..<count { destination[i] = Swift.max(destination[i], source[i]) }
        }
    }
}
