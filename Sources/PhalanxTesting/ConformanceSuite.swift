import PhalanxCollectives

/// The checks every `Communicator` must pass, run on every rank at once: exact results for
/// all-reduce (each op), reduce-scatter, all-gather and broadcast over a grid of element counts.
///
/// Values are small integers, so float sums are exact whatever the summation order and the
/// expected result is computed locally. Each rank returns the failures it saw (empty = pass).
public enum ConformanceSuite {
    /// The element counts checked for a world of `worldSize`: 0, 1, p−1, p+1, a prime (13) and
    /// 1,000,003 (or `largeCount`).
    public static func counts(worldSize: Int, largeCount: Int = 1_000_003) -> [Int] {
        Array(Set([0, 1, Swift.max(worldSize - 1, 0), worldSize + 1, 13, largeCount])).sorted()  // sorted: same order on every rank
    }

    /// This rank's input element `i` for `op` (small integers).
    static func value(rank: Int, index i: Int, op: ReduceOp) -> Float {
        switch op {
        case .sum, .average: return Float((rank + 1) * (i % 7 + 1))
        case .min, .max: return Float((rank * 31 + i * 7) % 13) - 6
        }
    }

    static func expected(worldSize p: Int, index i: Int, op: ReduceOp) -> Float {
        let values = (0..<p).map { value(rank: $0, index: i, op: op) }
        switch op {
        case .sum: return values.reduce(0, +)
        case .average: return values.reduce(0, +) / Float(p)
        case .min: return values.min() ?? 0
        case .max: return values.max() ?? 0
        }
    }

    /// Runs every check on `communicator`; every rank must call it at the same time with the same
    /// arguments. Returns one line per failure.
    /// - Throws: the first `CollectiveError` (a failure of the transport, not of the results).
    public static func run(on communicator: any Communicator, counts: [Int], options: CollectiveOptions = .default) throws -> [String] {
        let p = communicator.worldSize, r = communicator.rank
        var failures: [String] = []
        func check(_ name: String, _ buffer: [Float], _ range: Range<Int>, _ expected: (Int) -> Float) {
            for i in range where buffer[i] != expected(i) {
                failures.append("rank \(r): \(name) element \(i) is \(buffer[i]), expected \(expected(i))")
                return
            }
        }
        for count in counts {
            for op in ReduceOp.allCases {
                var buffer = (0..<count).map { value(rank: r, index: $0, op: op) }
                try buffer.withUnsafeMutableBufferPointer { try communicator.allReduce($0, op: op, options: options) }
                // The average of small integers over p ranks is exact only to rounding: compare
                // it against the same Float division.
                check("allReduce(\(op)) n=\(count)", buffer, 0..<count) { expected(worldSize: p, index: $0, op: op) }
            }
            var scattered = (0..<count).map { value(rank: r, index: $0, op: .sum) }
            let own = try scattered.withUnsafeMutableBufferPointer { try communicator.reduceScatter($0, op: .sum, options: options) }
            if own != ChunkLayout(count: count, parts: p).range(r) { failures.append("rank \(r): reduceScatter n=\(count) returned \(own)") }
            check("reduceScatter n=\(count)", scattered, own) { expected(worldSize: p, index: $0, op: .sum) }

            let layout = ChunkLayout(count: count, parts: p)
            var gathered = [Float](repeating: -1, count: count)
            for i in layout.range(r) { gathered[i] = Float(i) }
            try gathered.withUnsafeMutableBufferPointer { try communicator.allGather($0, options: options) }
            check("allGather n=\(count)", gathered, 0..<count) { Float($0) }

            for root in (p > 1 ? [0, p - 1] : [0]) {
                var broadcasted = (0..<count).map { r == root ? Float($0 % 1000) + 0.5 : -7 }
                try broadcasted.withUnsafeMutableBufferPointer { try communicator.broadcast($0, from: root, options: options) }
                check("broadcast(from: \(root)) n=\(count)", broadcasted, 0..<count) { Float($0 % 1000) + 0.5 }
            }
        }
        try communicator.barrier(options: options)
        return failures
    }

    /// `iterations` all-reduces of seeded random sizes (up to `maximumCount`) and random values;
    /// returns a 64-bit FNV-1a hash of every result's bits, which must be equal on every rank.
    /// - Throws: the first `CollectiveError`.
    public static func repeatedAllReduceChecksum(
        on communicator: any Communicator, iterations: Int = 100, maximumCount: Int = 50_000, seed: UInt64 = 1,
        options: CollectiveOptions = .default
    ) throws -> UInt64 {
        var state = seed
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 17
        }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for _ in 0..<iterations {
            let count = Int(next() % UInt64(maximumCount + 1))
            // Same sizes everywhere, rank-dependent values (not exactly summable: order matters).
            var buffer = (0..<count).map { i in Float(sin(Double(i &* 7919 &+ communicator.rank &* 104_729 &+ Int(state % 1000)))) }
            try buffer.withUnsafeMutableBufferPointer { try communicator.allReduce($0, op: .sum, options: options) }
            for value in buffer {
                hash = (hash ^ UInt64(value.bitPattern)) &* 0x100_0000_01b3
            }
        }
        return hash
    }
}

#if canImport(Glibc)
import Glibc
#endif
