/// The simulator's random source: SplitMix64, so that every run of a seed draws the same.
public struct SimulationRandom: Sendable, Hashable {
    private var state: UInt64

    /// Seeds the generator.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in `0 ..< bound` (0 when bound is 0).
    public mutating func below(_ bound: UInt64) -> UInt64 { bound == 0 ? 0 : next() % bound }

    /// A number in `0 ..< 1`.
    public mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }

    /// True with probability `p`.
    public mutating func chance(_ p: Double) -> Bool { unit() < p }

    /// Milliseconds in `range`.
    public mutating func milliseconds(_ range: ClosedRange<Int>) -> Int64 {
        Int64(range.lowerBound) + Int64(below(UInt64(range.upperBound - range.lowerBound + 1)))
    }
}
