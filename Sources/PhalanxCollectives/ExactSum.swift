/// A sum of `Float` contributions over the ranks of a communicator whose result is the same,
/// bit for bit, whatever the number of ranks, the order in which the ring adds, and which rank
/// holds which contribution.
///
/// A floating-point sum depends on its order, and a ring all-reduce adds in an order that
/// depends on the world size: the same gradients summed by 4 ranks and by 3 differ in their last
/// bits, and over thousands of steps (a ReLU on the edge, for instance) a run that lost a member
/// can settle measurably away from one that did not. `ExactSum` removes that:
///
/// 1. Every rank finds the largest magnitude among its contributions; one all-reduce (`max`,
///    which is exact) makes it global. From it and the total number of contributions comes one
///    power-of-two scale, the same on every rank and in every run with the same contributions.
/// 2. Each contribution is rounded to an integer at that scale (fixed point, 2⁻ˢ resolution with
///    about 45 bits below the largest magnitude), and a rank's contributions are added as
///    `Int64`, which is exact and therefore order-free.
/// 3. Each rank's integer sum travels as three 16-bit limbs in `Float`s. Partial sums of at most
///    `maximumWorldSize` such limbs stay below 2²⁴, where every `Float` is an integer and every
///    addition exact, so the ring's sum of limbs is exact in any order.
/// 4. The limbs are recombined into the exact integer total and scaled back once.
///
/// The price: three times the bytes of a plain all-reduce, a tiny extra all-reduce, and the
/// contributions kept until the scale is known. Non-finite contributions (NaN, ±∞) make every
/// rank fall back to a plain `Float` sum, so they propagate as they would without `ExactSum`.
public enum ExactSum {
    /// The most ranks whose limb sums stay exact in `Float` (512 · 2¹⁵ = 2²⁴; one limb of slack).
    public static let maximumWorldSize = 256

    /// The bits below the largest magnitude kept by the fixed point, before the headroom for the
    /// number of contributions is taken off (three 16-bit limbs hold ±2⁴⁷).
    static let bits = 45

    /// Writes into `output` the sum over every rank of every rank's `contributions`; each
    /// contribution holds `output.count` elements.
    ///
    /// Every rank calls it (a rank may bring no contribution). The result is identical on every
    /// rank and depends only on the multiset of all ranks' contributions and on `total`: not on
    /// the world size, the ranks' order, or how the contributions are spread over the ranks.
    /// With `communicator` nil the sum is over this process's contributions alone, with the same
    /// rounding (so one process and a ring of any size agree).
    /// - Parameters:
    ///   - total: the number of contributions over all ranks, the same on every rank (for
    ///     example the number of fixed shards a global batch is split into). It sets the
    ///     headroom of the fixed point, so runs that must agree must pass the same value.
    /// - Throws: `CollectiveError.invalidArgument` for a contribution of the wrong length, more
    ///   local contributions than `total`, or a world larger than `maximumWorldSize`; any error
    ///   of the communicator's all-reduces.
    public static func sum(
        _ contributions: [UnsafeBufferPointer<Float>], total: Int, into output: UnsafeMutableBufferPointer<Float>,
        over communicator: (any Communicator)?, options: CollectiveOptions = .default
    ) throws {
        let rank = communicator?.rank ?? 0
        func invalid(_ message: String) -> CollectiveError {
            CollectiveError(.invalidArgument, operation: "exactSum", sequence: 0, rank: rank, message: message)
        }
        guard contributions.count <= max(total, 0) else {
            throw invalid("\(contributions.count) local contributions but a total of \(total)")
        }
        if let bad = contributions.firstIndex(where: { $0.count != output.count }) {
            throw invalid("contribution \(bad) has \(contributions[bad].count) elements, the output \(output.count)")
        }
        if let communicator, communicator.worldSize > maximumWorldSize {
            throw invalid("\(communicator.worldSize) ranks: exact sums hold for at most \(maximumWorldSize)")
        }
        // 1. The global largest magnitude, and whether anything is not finite.
        var extremes: [Float] = [0, 0]
        for contribution in contributions {
            for value in contribution {
                if value.isFinite { extremes[0] = Swift.max(extremes[0], value.magnitude) } else { extremes[1] = 1 }
            }
        }
        if let communicator, communicator.worldSize > 1 {
            try extremes.withUnsafeMutableBufferPointer { try communicator.allReduce($0, op: .max, options: options) }
        }
        guard extremes[1] == 0 else {
            try plainSum(contributions, into: output, over: communicator, options: options)
            return
        }
        guard extremes[0] > 0 else {
            output.update(repeating: 0)
            return
        }
        // |value| < 2^(exponent+1); every rounded contribution stays below 2^(bits-headroom),
        // so `total` of them below 2^bits.
        let headroom = Int.bitWidth - max(total - 1, 1).leadingZeroBitCount
        let shift = bits - headroom - (Int(extremes[0].exponent) + 1)
        // 2. This rank's contributions, rounded and added exactly.
        var integers = [Int64](repeating: 0, count: output.count)
        let up = Double(sign: .plus, exponent: shift, significand: 1)
        for contribution in contributions {
            for (index, value) in contribution.enumerated() {
                integers[index] &+= Int64((Double(value) * up).rounded())
            }
        }
        // 3. Three balanced 16-bit limbs per element, summed exactly by the ring.
        let count = output.count
        var limbs = [Float](repeating: 0, count: 3 * count)
        for index in 0..<count {
            var rest = integers[index]
            for limb in 0..<3 {
                let low = ((rest &+ 0x8000) & 0xFFFF) &- 0x8000
                limbs[limb * count + index] = Float(low)
                rest = (rest &- low) >> 16
            }
        }
        if let communicator, communicator.worldSize > 1 {
            try limbs.withUnsafeMutableBufferPointer { try communicator.allReduce($0, op: .sum, options: options) }
        }
        // 4. The exact total, scaled back once.
        let down = Double(sign: .plus, exponent: -shift, significand: 1)
        for index in 0..<count {
            let exact = Int64(limbs[index]) &+ (Int64(limbs[count + index]) << 16) &+ (Int64(limbs[2 * count + index]) << 32)
            output[index] = Float(Double(exact) * down)
        }
    }

    /// The fallback for non-finite contributions: a plain local and ring `Float` sum.
    static func plainSum(
        _ contributions: [UnsafeBufferPointer<Float>], into output: UnsafeMutableBufferPointer<Float>,
        over communicator: (any Communicator)?, options: CollectiveOptions
    ) throws {
        output.update(repeating: 0)
        for contribution in contributions {
            guard let source = contribution.baseAddress, let destination = output.baseAddress else { continue }
            ReduceOp.sum.combine(into: destination, from: source, count: output.count)
        }
        if let communicator, communicator.worldSize > 1 { try communicator.allReduce(output, op: .sum, options: options) }
    }
}
