@testable import PhalanxCollectives
import PhalanxTensor
import PhalanxTesting
import Testing

/// `ExactSum`: the same bits whatever the world size and however the contributions are spread.
@Suite struct ExactSumTests {
    /// `total` contributions of `count` elements with magnitudes over many decades, signs mixed,
    /// some exact zeros and some elements that cancel between contributions.
    static func contributions(total: Int, count: Int, seed: UInt64) -> [[Float]] {
        var generator = SeededGenerator(seed: seed)
        return (0..<total).map { shard in
            (0..<count).map { index in
                if index % 17 == 0 { return 0 }
                if index % 13 == 0 { return shard % 2 == 0 ? 0.1 : -0.1 }  // cancels in pairs
                let magnitude = Float.random(in: 1...2, using: &generator) * Float(sign: .plus, exponent: -Int.random(in: 0...30, using: &generator), significand: 1)
                return Bool.random(using: &generator) ? magnitude : -magnitude
            }
        }
    }

    /// Runs the exact sum on `worldSize` in-process ranks, rank `r` holding the contributions of
    /// `assignment(r)` (in that order); returns every rank's result.
    static func run(_ all: [[Float]], worldSize: Int, total: Int? = nil, assignment: @escaping @Sendable (Int) -> [Int]) -> [[Float]?] {
        let ring = InProcessRing(worldSize: worldSize)
        let count = all.first?.count ?? 0
        return RankThreads.run(count: worldSize) { rank -> [Float]? in
            let mine = assignment(rank).map { all[$0] }
            var output = [Float](repeating: .nan, count: count)
            do {
                try withPointers(mine) { parts in
                    try output.withUnsafeMutableBufferPointer {
                        try ExactSum.sum(parts, total: total ?? all.count, into: $0, over: RingCommunicator(transport: ring.transport(rank: rank)))
                    }
                }
                return output
            } catch {
                return nil
            }
        }
    }

    /// `body` with the arrays as buffer pointers (copies that live until it returns).
    static func withPointers<R>(_ arrays: [[Float]], _ body: ([UnsafeBufferPointer<Float>]) throws -> R) rethrows -> R {
        let buffers = arrays.map { array -> UnsafeMutableBufferPointer<Float> in
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: array.count)
            _ = buffer.initialize(from: array)
            return buffer
        }
        defer { buffers.forEach { $0.deallocate() } }
        return try body(buffers.map { UnsafeBufferPointer($0) })
    }

    @Test(arguments: [UInt64(1), 2, 3])
    func theSameBitsForEveryWorldSizeAndSpread(seed: UInt64) throws {
        let total = 12, count = 1001
        let all = Self.contributions(total: total, count: count, seed: seed)
        let alone = Self.run(all, worldSize: 1) { _ in Array(0..<total) }
        let reference = try #require(alone[0])
        // Against a Double reference (its own rounding is far below the bound): within the fixed
        // point's resolution, then one Float rounding.
        let largest = all.flatMap { $0 }.map(\.magnitude).max() ?? 0
        for index in 0..<count {
            let exact = all.reduce(0.0) { $0 + Double($1[index]) }
            #expect(abs(Double(reference[index]) - exact) <= Double(largest) * 0x1p-36 + exact.magnitude * 0x1p-24, "element \(index)")
        }
        #expect(reference[13] == 0 && reference[17] == 0)
        for worldSize in 2...6 {
            // Contiguous slices, as the trainer spreads shards, and a scattered reversed spread.
            let sliced = Self.run(all, worldSize: worldSize) { rank in Array((rank * total / worldSize)..<((rank + 1) * total / worldSize)) }
            let scattered = Self.run(all, worldSize: worldSize) { rank in Array(stride(from: rank, to: total, by: worldSize).reversed()) }
            for result in sliced + scattered {
                let values = try #require(result, "world size \(worldSize) failed")
                #expect(values.map(\.bitPattern) == reference.map(\.bitPattern), "world size \(worldSize)")
            }
        }
        // A plain Float ring sum is not like that: the same contributions summed by a ring of
        // 5 and of 3 differ somewhere (what ExactSum is for).
        func ringSum(_ worldSize: Int) -> [Float]? {
            let ring = InProcessRing(worldSize: worldSize)
            return RankThreads.run(count: worldSize) { rank -> [Float]? in
                var local = [Float](repeating: 0, count: count)
                for shard in (rank * total / worldSize)..<((rank + 1) * total / worldSize) {
                    for index in 0..<count { local[index] += all[shard][index] }
                }
                do {
                    try local.withUnsafeMutableBufferPointer { try RingCommunicator(transport: ring.transport(rank: rank)).allReduce($0, op: .sum) }
                    return local
                } catch {
                    return nil
                }
            }[0]
        }
        #expect(try #require(ringSum(5)) != (try #require(ringSum(3))))
    }

    /// Each block of `blockSize` elements has its own scale: elements 2⁶⁰ smaller than the
    /// largest of the buffer keep a Float's precision when their block holds nothing larger.
    @Test func smallBlocksKeepTheirPrecisionBesideLargeOnes() throws {
        let large = 256, count = 3 * large
        let all = (0..<4).map { shard in
            (0..<count).map { index -> Float in
                let base = Float(index % 7 + 1) * (shard % 2 == 0 ? 1 : -0.75) + Float(shard) * 0.01
                return index < large ? base * 1e6 : base * 1e-12
            }
        }
        let results = Self.run(all, worldSize: 3) { rank in rank == 0 ? [0, 1] : [rank + 1] }
        for result in results {
            let values = try #require(result)
            for index in 0..<count {
                let exact = all.reduce(0.0) { $0 + Double($1[index]) }
                #expect(abs(Double(values[index]) - exact) <= exact.magnitude * 0x1p-23, "element \(index): \(values[index]) against \(exact)")
            }
        }
    }

    /// Subnormal inputs, sums that overflow a Float, one contribution in all, and more ranks
    /// than contributions: the same bits on every world size.
    @Test func extremeMagnitudesAndIdleRanks() throws {
        let tiny: [[Float]] = [[.leastNonzeroMagnitude, -.leastNormalMagnitude / 3, 0], [.leastNonzeroMagnitude * 5, .leastNormalMagnitude / 7, -.leastNonzeroMagnitude]]
        let huge: [[Float]] = [[.greatestFiniteMagnitude, -.greatestFiniteMagnitude, 1], [.greatestFiniteMagnitude, -1, 2]]
        for all in [tiny, huge, [[1.5, -2.25, 1e-30]]] {
            let alone = try #require(Self.run(all, worldSize: 1) { _ in Array(0..<all.count) }[0])
            for worldSize in [2, 5] {  // at 5 ranks, three bring nothing
                for result in Self.run(all, worldSize: worldSize, assignment: { rank in rank < all.count ? [all.count - 1 - rank] : [] }) {
                    let values = try #require(result, "world size \(worldSize)")
                    #expect(values.map(\.bitPattern) == alone.map(\.bitPattern), "world size \(worldSize): \(values) against \(alone)")
                }
            }
            // One contribution comes back as it was, except an element far below its block's
            // largest (1e-30 beside 2.25: below the fixed point's resolution).
            if all.count == 1 { #expect(alone == [1.5, -2.25, 0]) }
        }
        let huge0 = try #require(Self.run(huge, worldSize: 1) { _ in [0, 1] }[0])
        #expect(huge0[0] == .infinity && huge0[1] == -.greatestFiniteMagnitude && huge0[2] == 0)
        let tiny0 = try #require(Self.run(tiny, worldSize: 1) { _ in [0, 1] }[0])
        #expect(tiny0[0] == .leastNonzeroMagnitude * 6)
    }

    /// The limbs at the edges of their range come back exactly, and 256 ranks' worst limbs sum
    /// exactly in Float.
    @Test func limbsAtTheEdges() throws {
        let edges: [Int64] = [0, 1, -1, 0x7FFF, 0x8000, -0x8000, -0x8001, 1 << 45, -(1 << 45), (1 << 45) - 1, 0x1234_5678_9ABC, -0x1234_5678_9ABC]
        for value in edges {
            let split = ExactSum.limbs(of: value)
            for limb in [split.low, split.middle, split.high] { #expect(limb >= -0x8000 && limb < 0x8000, "\(value): \(split)") }
            #expect(ExactSum.joined(low: split.low, middle: split.middle, high: split.high) == value)
        }
        // Summed limbs of several values join to the sum of the values.
        let splits = edges.map(ExactSum.limbs(of:))
        #expect(ExactSum.joined(low: splits.map(\.low).reduce(0, +), middle: splits.map(\.middle).reduce(0, +), high: splits.map(\.high).reduce(0, +)) == edges.reduce(0, +))
        // 256 ranks' limbs, the extremes among them, summed in Float in any order: exact.
        var generator = SeededGenerator(seed: 5)
        var ranks = (0..<ExactSum.maximumWorldSize).map { _ in Int64.random(in: -0x8000..<0x8000, using: &generator) }
        ranks[0] = -0x8000
        ranks[1] = 0x7FFF
        for order in [ranks, ranks.reversed(), ranks.sorted(), ranks.shuffled(using: &generator)] {
            #expect(Int64(exactly: order.reduce(Float(0)) { $0 + Float($1) }) == ranks.reduce(0, +))
        }
        let worst = [Int64](repeating: -0x8000, count: ExactSum.maximumWorldSize)
        #expect(Int64(exactly: worst.reduce(Float(0)) { $0 + Float($1) }) == worst.reduce(0, +))
    }

    @Test func zerosNonFiniteValuesAndBadArguments() throws {
        let zeros = [[Float]](repeating: [Float](repeating: 0, count: 5), count: 4)
        let summed = Self.run(zeros, worldSize: 3) { rank in rank == 0 ? [0, 1] : [rank + 1] }
        for result in summed { #expect(result == [Float](repeating: 0, count: 5)) }
        // A zero-element sum, and no contribution anywhere.
        #expect(Self.run([[]], worldSize: 2) { rank in rank == 0 ? [0] : [] }.allSatisfy { $0 == [] })
        // A NaN or an infinity anywhere falls back to the Float sum on every rank.
        var special = Self.contributions(total: 4, count: 5, seed: 9)
        special[2][1] = .nan
        special[3][4] = .infinity
        for result in Self.run(special, worldSize: 2, assignment: { rank in rank == 0 ? [0, 1] : [2, 3] }) {
            let values = try #require(result)
            #expect(values[1].isNaN && values[4] == .infinity && values[0].isFinite)
        }
        // One rank's bad arguments fail the call on every rank (the others do not wait), and so
        // do totals that differ between ranks.
        let lengths = Self.run([[1, 2, 3], [4, 5, 6]], worldSize: 3) { rank in rank == 1 ? [0, 1, 0] : [] }
        #expect(lengths.allSatisfy { $0 == nil })
        let totals = Self.run([[1, 2, 3], [4, 5, 6]], worldSize: 2, total: nil) { rank in [rank] }
        #expect(totals.allSatisfy { $0 == [5, 7, 9] })
        let ring = InProcessRing(worldSize: 2)
        let mismatched = RankThreads.run(count: 2) { rank -> String? in
            var output: [Float] = [0]
            do {
                try Self.withPointers([[1]]) { parts in
                    try output.withUnsafeMutableBufferPointer { try ExactSum.sum(parts, total: 2 + rank, into: $0, over: RingCommunicator(transport: ring.transport(rank: rank))) }
                }
                return nil
            } catch {
                return "\(error)"
            }
        }
        #expect(mismatched.allSatisfy { $0?.contains("different totals") == true }, "\(mismatched)")
        // A world larger than the limbs allow.
        var output = [Float](repeating: 0, count: 3)
        #expect(throws: CollectiveError.self) {
            try output.withUnsafeMutableBufferPointer { try ExactSum.sum([], total: 1, into: $0, over: WideWorld()) }
        }
        // Wrong lengths, more local contributions than the total, a total out of range.
        #expect(throws: CollectiveError.self) {
            try Self.withPointers([[1, 2]]) { parts in try output.withUnsafeMutableBufferPointer { try ExactSum.sum(parts, total: 1, into: $0, over: nil) } }
        }
        #expect(throws: CollectiveError.self) {
            try Self.withPointers([[1, 2, 3], [4, 5, 6]]) { parts in try output.withUnsafeMutableBufferPointer { try ExactSum.sum(parts, total: 1, into: $0, over: nil) } }
        }
        #expect(throws: CollectiveError.self) {
            try output.withUnsafeMutableBufferPointer { try ExactSum.sum([], total: ExactSum.maximumTotal + 1, into: $0, over: nil) }
        }
    }
}

/// A communicator of 257 ranks that must never be called.
private final class WideWorld: Communicator {
    var rank: Int { 0 }
    var worldSize: Int { ExactSum.maximumWorldSize + 1 }
    func unexpected(_ operation: String) -> CollectiveError {
        CollectiveError(.invalidArgument, operation: operation, sequence: 0, rank: 0, message: "WideWorld must not be called")
    }
    func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp, options: CollectiveOptions) throws { throw unexpected("allReduce") }
    func reduceScatter(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp, options: CollectiveOptions) throws -> Range<Int> { throw unexpected("reduceScatter") }
    func allGather(_ buffer: UnsafeMutableBufferPointer<Float>, options: CollectiveOptions) throws { throw unexpected("allGather") }
    func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, from root: Int, options: CollectiveOptions) throws { throw unexpected("broadcast") }
    func barrier(options: CollectiveOptions) throws { throw unexpected("barrier") }
}
