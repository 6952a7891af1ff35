/// What one simulated schedule did and whether every invariant held.
public struct SimulationReport: Sendable {
    /// The seed (replays the run).
    public let seed: UInt64
    /// The schedule.
    public let options: SimulationOptions
    /// Events processed.
    public var events = 0
    /// Messages sent (lost ones included).
    public var messages = 0
    /// Steps committed, summed over processes.
    public var stepsCommitted = 0
    /// Members left out of a new membership (they asked to join again).
    public var evictions = 0
    /// Newcomers started (replacements and additions).
    public var joiners = 0
    /// Faults injected, by kind.
    public var faults: [SimulationOptions.Fault: Int] = [:]
    /// Epochs decided.
    public var epochs = 0
    /// Simulated time at the end.
    public var simulatedSeconds = 0.0
    /// Whether the job reached its last step.
    public var finished = false
    /// Whether a quorum survived the faults, so that finishing was required.
    public var livenessRequired = false
    /// Broken invariants (empty when the run is correct).
    public var violations: [String] = []
    /// Every event, when the options asked for a trace.
    public var trace: [String] = []

    /// One line: seed, members, faults, outcome.
    public var summary: String {
        let injected = faults.values.reduce(0, +)
        let outcome = violations.isEmpty ? (finished ? "finished" : (livenessRequired ? "not finished" : "quorum lost")) : "VIOLATION: \(violations[0])"
        return "seed \(seed): \(options.members) members, \(injected) faults, \(joiners) newcomers, \(epochs) epochs, \(events) events, "
            + "\(String(format: "%.1f", simulatedSeconds)) s simulated: \(outcome)"
    }
}
