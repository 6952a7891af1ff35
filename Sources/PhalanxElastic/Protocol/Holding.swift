/// What a member holds of the training state: the step of its last commit, and whether that
/// state is intact (a state transfer that failed half-way can leave a member's buffers partly
/// overwritten under the in-place commit policy).
public struct Holding: Hashable, Codable, Sendable, CustomStringConvertible {
    /// The step the committed state is at (the number of steps trained into it).
    public var step: Int
    /// False when the buffers no longer hold the committed state of `step`.
    public var intact: Bool

    /// Makes a holding.
    public init(step: Int, intact: Bool = true) {
        self.step = step
        self.intact = intact
    }

    /// "step 12" or "step 12 (damaged)".
    public var description: String { intact ? "step \(step)" : "step \(step) (damaged)" }
}
