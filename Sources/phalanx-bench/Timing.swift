import Foundation

/// Wall-clock timing for benchmarks: warm up, then take the median of repeated runs.
enum Timing {
    /// Seconds since an arbitrary start, monotonic.
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// The median duration in seconds of `repeats` calls of `body` after `warmup` untimed calls.
    static func median(repeats: Int, warmup: Int = 2, _ body: () throws -> Void) rethrows -> Double {
        for _ in 0..<warmup { try body() }
        var samples: [Double] = []
        for _ in 0..<max(repeats, 1) {
            let start = now()
            try body()
            samples.append(now() - start)
        }
        return median(of: samples)
    }

    /// The middle value (the upper one of an even count); 0 for none.
    static func median(of values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
    }

    /// The values after the first fifth (warm-up), for steady-state statistics.
    static func steady(_ values: [Double]) -> [Double] { Array(values.dropFirst(values.count / 5)) }

    /// The fastest of `repeats` runs of two bodies measured in alternation, so that drift (clock
    /// changes, other tenants of the machine) hits both. Interference only ever slows a run down,
    /// so the minimum is the most repeatable estimate of each body's own cost on a shared machine.
    static func paired(repeats: Int, warmup: Int = 2, _ a: () throws -> Void, _ b: () throws -> Void) rethrows -> (Double, Double) {
        for _ in 0..<warmup {
            try a()
            try b()
        }
        var sa: [Double] = [], sb: [Double] = []
        for _ in 0..<max(repeats, 1) {
            var start = now()
            try a()
            sa.append(now() - start)
            start = now()
            try b()
            sb.append(now() - start)
        }
        return (sa.min() ?? 0, sb.min() ?? 0)
    }
}
