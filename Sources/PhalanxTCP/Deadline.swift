#if canImport(Glibc)
import Glibc
#endif

/// A point in monotonic time after which a blocking call gives up.
struct Deadline: Sendable {
    let instant: ContinuousClock.Instant

    /// A deadline `duration` from now (at most a year, so that huge timeouts cannot overflow).
    init(after duration: Duration) { instant = .now + min(duration, .seconds(365 * 24 * 3600)) }
    init(_ instant: ContinuousClock.Instant) { self.instant = instant }

    init(_ start: ContinuousClock.Instant, plus duration: Duration) { instant = start + min(duration, .seconds(365 * 24 * 3600)) }

    var hasPassed: Bool { ContinuousClock.now >= instant }

    /// Milliseconds left for `poll`, rounded up, 0 once passed, capped at `Int32.max`.
    var pollMilliseconds: Int32 {
        let left = instant - .now
        if left <= .zero { return 0 }
        let (seconds, attoseconds) = left.components
        let ms = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return Int32(clamping: ms)
    }
}

/// Pauses for retry loops: they double from 5 ms up to `cap`, and never run past a deadline.
struct Backoff {
    private var pause: Duration = .milliseconds(5)
    private let cap: Duration

    /// Pauses of at most `cap`.
    init(cap: Duration) { self.cap = cap }

    /// Back to the first, shortest pause (something changed: the next try may succeed soon).
    mutating func reset() { pause = .milliseconds(5) }

    /// Sleeps the current pause (cut at `deadline`), then doubles it.
    mutating func sleep(before deadline: Deadline) {
        let nap = min(pause, deadline.instant - .now)
        if nap > .zero {
            var time = timespec(tv_sec: Int(nap.components.seconds), tv_nsec: Int(nap.components.attoseconds / 1_000_000_000))
            nanosleep(&time, nil)
        }
        pause = min(pause * 2, cap)
    }
}
