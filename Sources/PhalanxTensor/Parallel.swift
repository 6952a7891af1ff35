import Dispatch

/// Splits bandwidth-bound loops over the machine's cores.
public enum Parallel {
    /// Loops shorter than this run on the calling thread: below it, waking other threads costs
    /// more than it saves (≈ 20 µs per wake on a small VM).
    public static let minimumParallelCount = 1 << 18

    /// Calls `body(range)` on disjoint ranges covering `0..<count`, concurrently when `count` is
    /// at least `minimumParallelCount`, otherwise once on the calling thread. Ranges start at
    /// multiples of 16 elements (64 bytes) so that no two threads write one cache line.
    ///
    /// `body` must only touch the elements of the range it is given: it runs on several threads
    /// at once over disjoint ranges.
    public static func forEachChunk(count: Int, _ body: (Range<Int>) -> Void) {
        let workers = min(System.activeProcessorCount, max(1, count / minimumParallelCount))
        guard workers > 1 else {
            if count > 0 { body(0..<count) }
            return
        }
        let chunk = ((count + workers - 1) / workers + 15) / 16 * 16
        withoutActuallyEscaping(body) { escapable in
            // The ranges are disjoint and concurrentPerform returns only when all are done.
            let shared = UncheckedSendable(escapable)
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                let start = w * chunk, end = min(start + chunk, count)
                if start < end { shared.value(start..<end) }
            }
        }
    }
}

/// Carries a value into concurrent code whose safety the caller guarantees.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// What the process may use of the machine.
enum System {
    /// The number of processors available to this process.
    static let activeProcessorCount: Int = {
        #if canImport(Glibc)
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        #else
        return 1
        #endif
    }()
}

#if canImport(Glibc)
import Glibc
#endif
