/// How many failed workers a launcher may still replace, and when (for `phalanx-run` and node
/// agents): at most `limit` replacements in any `window` (like Horovod's reset limit, but per
/// window, so a long job with rare failures never runs out), each after a capped exponential
/// back-off that grows while workers die young (a crash loop) and resets once one lived.
public struct RestartBudget: Sendable {
    /// Replacements allowed in any window.
    public let limit: Int
    /// The window.
    public let window: Duration
    /// The delay after the second worker in a row that died young (the first is replaced at once).
    public var initialBackoff: Duration = .milliseconds(250)
    /// The longest delay.
    public var maximumBackoff: Duration = .seconds(8)
    /// A worker that lived less than this died young.
    public var youngLifetime: Duration = .seconds(3)
    private var grants: [ContinuousClock.Instant] = []
    private var youngInARow = 0
    /// Replacements granted so far, in all windows.
    public private(set) var granted = 0

    /// At most `limit` replacements in any `window`.
    public init(limit: Int, window: Duration) {
        self.limit = limit
        self.window = window
    }

    /// Asks to replace a worker that lived `lived`, at `now`: the delay to wait before starting
    /// the replacement, or nil when `limit` replacements were granted in the last `window`.
    public mutating func grant(lived: Duration, now: ContinuousClock.Instant = .now) -> Duration? {
        grants.removeAll { now - $0 >= window }
        guard grants.count < limit else { return nil }
        grants.append(now)
        granted += 1
        youngInARow = lived < youngLifetime ? youngInARow + 1 : 0
        // The first replacement starts at once; a second young death in a row waits.
        guard youngInARow > 1 else { return .zero }
        let doublings = min(youngInARow - 2, 30)
        return min(initialBackoff * (1 << doublings), maximumBackoff)
    }

    /// Replacements granted in the window ending at `now`.
    public func used(now: ContinuousClock.Instant = .now) -> Int { grants.filter { now - $0 < window }.count }
}
