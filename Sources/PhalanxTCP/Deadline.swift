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
