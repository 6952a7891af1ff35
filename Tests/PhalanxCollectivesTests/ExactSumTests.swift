import PhalanxCollectives
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
    static func run(_ all: [[Float]], worldSize: Int, assignment: @escaping @Sendable (Int) -> [Int]) -> [[Float]?] {
        let ring = InProcessRing(worldSize: worldSize)
        let count = all[0].count
        return RankThreads.run(count: worldSize) { rank -> [Float]? in
            let mine = assignment(rank).map { all[$0] }
            var output = [Float](repeating: .nan, count: count)
            do {
                try withPointers(mine) { parts in
                    try output.withUnsafeMutableBufferPointer {
                        try ExactSum.sum(parts, total: all.count, into: $0, over: RingCommunicator(transport: ring.transport(rank: rank)))
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
        // Against an exact reference (Double sums of at most 12 Floats of these magnitudes
        // are exact): within the fixed point's resolution, then one Float rounding.
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
                try? local.withUnsafeMutableBufferPointer { try RingCommunicator(transport: ring.transport(rank: rank)).allReduce($0, op: .sum) }
                return local
            }[0]
        }
        #expect(try #require(ringSum(5)) != (try #require(ringSum(3))))
    }

    @Test func zerosNonFiniteValuesAndBadArguments() throws {
        let zeros = [[Float]](repeating: [Float](repeating: 0, count: 5), count: 4)
        let summed = Self.run(zeros, worldSize: 3) { rank in rank == 0 ? [0, 1] : [rank + 1] }
        for result in summed { #expect(result == [Float](repeating: 0, count: 5)) }
        // A NaN or an infinity anywhere falls back to the Float sum on every rank.
        var special = Self.contributions(total: 4, count: 5, seed: 9)
        special[2][1] = .nan
        special[3][4] = .infinity
        for result in Self.run(special, worldSize: 2, assignment: { rank in rank == 0 ? [0, 1] : [2, 3] }) {
            let values = try #require(result)
            #expect(values[1].isNaN && values[4] == .infinity && values[0].isFinite)
        }
        // Wrong lengths and more local contributions than the total are refused.
        var output = [Float](repeating: 0, count: 3)
        #expect(throws: CollectiveError.self) {
            try Self.withPointers([[1, 2]]) { parts in try output.withUnsafeMutableBufferPointer { try ExactSum.sum(parts, total: 1, into: $0, over: nil) } }
        }
        #expect(throws: CollectiveError.self) {
            try Self.withPointers([[1, 2, 3], [4, 5, 6]]) { parts in try output.withUnsafeMutableBufferPointer { try ExactSum.sum(parts, total: 1, into: $0, over: nil) } }
        }
    }
}
