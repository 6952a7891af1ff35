/// A sum of `Float` contributions over the ranks of a communicator whose result is the same,
/// bit for bit, whatever the number of ranks, the order in which the ring adds, and which rank
/// holds which contribution.
///
/// A floating-point sum depends on its order, and a ring all-reduce adds in an order that
/// depends on the world size: the same gradients summed by 4 ranks and by 3 differ in their last
/// bits, and over thousands of steps (a ReLU on the edge, for instance) a run that lost a member
/// can settle measurably away from one that did not. `ExactSum` removes that:
///
/// 1. Every rank finds the largest magnitude of each block of `blockSize` elements among its
///    contributions; one all-reduce (`max`, which is exact) makes them global. From each and the
///    total number of contributions comes a power-of-two scale per block, the same on every rank
///    and in every run with the same contributions.
/// 2. Each element is rounded to an integer at its block's scale (fixed point keeping
///    45 − ⌈log₂ total⌉ bits, give or take one, below the block's largest magnitude), and a
///    rank's contributions are added as `Int64`, which is exact and therefore order-free.
/// 3. Each rank's integer sum travels as three 16-bit limbs in `Float`s. Partial sums of at most
///    `maximumWorldSize` such limbs stay below 2²⁴, where every `Float` is an integer and every
///    addition exact, so the ring's sum of limbs is exact in any order.
/// 4. The limbs are recombined into the exact integer total and scaled back once.
///
/// The price: three times the bytes of a plain all-reduce, a small extra all-reduce (one `Float`
/// per block), and the contributions kept until the scales are known. Non-finite contributions
/// (NaN, ±∞) make every rank fall back to a plain `Float` sum, so they propagate as they would
/// without `ExactSum`. Invalid arguments on any rank fail the call on every rank (typed error),
/// never a rank alone while the others wait.
public enum ExactSum {
    /// The most ranks whose limb sums stay exact in `Float`: 256 · 2¹⁵ = 2²³ (2²⁴ is the bound;
    /// one bit of slack).
    public static let maximumWorldSize = 256
    /// The most contributions in a sum (the headroom they need comes out of the precision).
    public static let maximumTotal = 1 << 20
    /// Elements per block sharing one scale: a gradient element far smaller than the largest of
    /// the whole model keeps its precision as long as its block's largest is small too.
    public static let blockSize = 256

    /// The bits kept by the fixed point below a block's largest magnitude, before the headroom
    /// for the number of contributions is taken off (three balanced 16-bit limbs hold ±2⁴⁷).
    static let bits = 45

    /// Writes into `output` the sum over every rank of every rank's `contributions`; each
    /// contribution holds `output.count` elements.
    ///
    /// Every rank calls it (a rank may bring no contribution). When every contribution is
    /// finite, the result is identical on every rank and depends only on the multiset of all
    /// ranks' contributions and on `total`: not on the world size, the ranks' order, or how the
    /// contributions are spread over the ranks. With `communicator` nil the sum is over this
    /// process's contributions alone, with the same rounding (so one process and a ring of any
    /// size agree).
    /// - Parameters:
    ///   - total: the number of contributions over all ranks, the same on every rank (for
    ///     example the number of fixed shards a global batch is split into), at most
    ///     `maximumTotal`. It sets the headroom of the fixed point, so runs that must agree must
    ///     pass the same value.
    /// - Throws: `CollectiveError.invalidArgument` on every rank when any rank passed a
    ///   contribution of the wrong length, more local contributions than `total`, or a `total`
    ///   out of range or unlike the others', or for a world larger than `maximumWorldSize`;
    ///   `.protocolViolation` if the summed limbs are not exact integers (a peer that does not
    ///   follow the algorithm); any error of the communicator's all-reduces.
    public static func sum(
        _ contributions: [UnsafeBufferPointer<Float>], total: Int, into output: UnsafeMutableBufferPointer<Float>,
        over communicator: (any Communicator)?, options: CollectiveOptions = .default
    ) throws {
        let rank = communicator?.rank ?? 0
        func failure(_ message: String, code: CollectiveError.Code = .invalidArgument) -> CollectiveError {
            CollectiveError(code, operation: "exactSum", sequence: 0, rank: rank, message: message)
        }
        let world = communicator?.worldSize ?? 1
        guard world <= maximumWorldSize else { throw failure("\(world) ranks: exact sums hold for at most \(maximumWorldSize)") }
        let count = output.count
        let blocks = (count + blockSize - 1) / blockSize
        func elements(of block: Int) -> Range<Int> { (block * blockSize)..<Swift.min((block + 1) * blockSize, count) }
        // 1. Checked arguments, the total, non-finite values and every block's largest
        //    magnitude, all in one `max` all-reduce: [problem, total, −total, non-finite, maxima…].
        var problem: String?
        if total < 0 || total > maximumTotal {
            problem = "a total of \(total) contributions is outside 0...\(maximumTotal)"
        } else if contributions.count > total {
            problem = "\(contributions.count) local contributions but a total of \(total)"
        } else if let bad = contributions.firstIndex(where: { $0.count != count }) {
            problem = "contribution \(bad) has \(contributions[bad].count) elements, the output \(count)"
        }
        var extremes = [Float](repeating: 0, count: 4 + blocks)
        extremes[0] = problem == nil ? 0 : 1
        extremes[1] = Float(Swift.min(Swift.max(total, 0), maximumTotal))
        extremes[2] = -extremes[1]
        if problem == nil {
            extremes.withUnsafeMutableBufferPointer { extremes in
                for contribution in contributions {
                    guard let source = contribution.baseAddress else { continue }
                    for block in 0..<blocks {
                        // The largest magnitude's bit pattern: for non-negative Floats the
                        // pattern grows with the value, and ±∞ and NaN lie above every finite one.
                        var largest: UInt32 = 0
                        for index in elements(of: block) {
                            largest = Swift.max(largest, source[index].bitPattern & 0x7FFF_FFFF)
                        }
                        if largest >= Float.infinity.bitPattern {
                            extremes[3] = 1
                        } else {
                            extremes[4 + block] = Swift.max(extremes[4 + block], Float(bitPattern: largest))
                        }
                    }
                }
            }
        }
        if let communicator, world > 1 {
            try extremes.withUnsafeMutableBufferPointer { try communicator.allReduce($0, op: .max, options: options) }
        }
        if extremes[0] != 0 { throw failure(problem ?? "another rank passed invalid arguments") }
        if extremes[1] != -extremes[2] { throw failure("ranks passed different totals (\(Int(-extremes[2]))...\(Int(extremes[1])))") }
        if extremes[3] != 0 {
            try plainSum(contributions, into: output, over: communicator, options: options)
            return
        }
        // Each rounded element is at most 2^(bits − headroom) in magnitude, so `total` of them
        // at most 2^bits: |element| < 2^(exponent + 1) for its block's largest.
        let headroom = Int.bitWidth - Swift.max(total - 1, 1).leadingZeroBitCount
        let shifts = (0..<blocks).map { extremes[4 + $0] > 0 ? bits - headroom - (Int(extremes[4 + $0].exponent) + 1) : 0 }
        // 2. This rank's contributions, rounded and added exactly (the bound above leaves no
        //    room for overflow, hence the wrapping add, which lets the loop run unchecked).
        let integers = UnsafeMutableBufferPointer<Int64>.allocate(capacity: count)
        integers.initialize(repeating: 0)
        defer { integers.deallocate() }
        for contribution in contributions {
            guard let source = contribution.baseAddress else { continue }
            for block in 0..<blocks {
                let up = Double(sign: .plus, exponent: shifts[block], significand: 1)
                for index in elements(of: block) {
                    // Adding 1.5·2⁵² rounds |y| < 2⁵¹ to an integer (to nearest, ties to even)
                    // that then fills the low bits of the sum's pattern: branch-free, no libm.
                    let rounded = (Double(source[index]) * up + roundingMagic).bitPattern
                    integers[index] &+= Int64(bitPattern: rounded) &- roundingMagicBits
                }
            }
        }
        // 3. Three balanced 16-bit limbs per element, summed exactly by the ring.
        var sums = [Float](repeating: 0, count: 3 * count)
        sums.withUnsafeMutableBufferPointer { sums in
            for index in 0..<count {
                let split = limbs(of: integers[index])
                sums[index] = Float(split.low)
                sums[count + index] = Float(split.middle)
                sums[2 * count + index] = Float(split.high)
            }
        }
        if let communicator, world > 1 {
            try sums.withUnsafeMutableBufferPointer { try communicator.allReduce($0, op: .sum, options: options) }
        }
        // 4. The exact total, scaled back once.
        try sums.withUnsafeBufferPointer { sums in
            for block in 0..<blocks {
                let down = Double(sign: .plus, exponent: -shifts[block], significand: 1)
                for index in elements(of: block) {
                    guard let low = Int64(exactly: sums[index]), let middle = Int64(exactly: sums[count + index]),
                        let high = Int64(exactly: sums[2 * count + index])
                    else { throw failure("element \(index): the summed limbs are not exact integers", code: .protocolViolation) }
                    output[index] = Float(Double(joined(low: low, middle: middle, high: high)) * down)
                }
            }
        }
    }

    /// 1.5·2⁵²: see the rounding in step 2.
    static let roundingMagic: Double = 6_755_399_441_055_744
    /// Its bit pattern.
    static let roundingMagicBits = Int64(bitPattern: roundingMagic.bitPattern)

    /// `value` as `low + middle·2¹⁶ + high·2³²` with `low` and `middle` in `-2¹⁵..<2¹⁵` (and
    /// `high` too for |value| < 2⁴⁷).
    static func limbs(of value: Int64) -> (low: Int64, middle: Int64, high: Int64) {
        let low = ((value + 0x8000) & 0xFFFF) - 0x8000
        let rest = (value - low) >> 16
        let middle = ((rest + 0x8000) & 0xFFFF) - 0x8000
        return (low, middle, (rest - middle) >> 16)
    }

    /// The value of three (summed) limbs.
    static func joined(low: Int64, middle: Int64, high: Int64) -> Int64 { low + (middle << 16) + (high << 32) }

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
