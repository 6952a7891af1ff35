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
    /// Eight lanes at a time (the compiler left the plain loop scalar), with the same result per
    /// element as the scalar `+`, `Swift.min` and `Swift.max`.
    @inlinable
    public func combine(into destination: UnsafeMutablePointer<Float>, from source: UnsafePointer<Float>, count: Int) {
        let lanes = SIMD8<Float>.scalarCount
        var i = 0
        while i + lanes <= count {
            let d = UnsafeRawPointer(destination + i).loadUnaligned(as: SIMD8<Float>.self)
            let s = UnsafeRawPointer(source + i).loadUnaligned(as: SIMD8<Float>.self)
            let combined: SIMD8<Float>
            switch self {
            case .sum, .average: combined = d + s
            case .min: combined = d.replacing(with: s, where: s .< d)  // Swift.min(d, s)
            case .max: combined = d.replacing(with: s, where: s .>= d)  // Swift.max(d, s)
            }
            UnsafeMutableRawPointer(destination + i).storeBytes(of: combined, as: SIMD8<Float>.self)
            i += lanes
        }
        while i < count {
            switch self {
            case .sum, .average: destination[i] += source[i]
            case .min: destination[i] = Swift.min(destination[i], source[i])
            case .max: destination[i] = Swift.max(destination[i], source[i])
            }
            i += 1
        }
    }
}
