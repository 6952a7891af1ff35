import PhalanxTCP

/// What the agreement chose for a new epoch: its members, the step every member continues
/// from and who holds it, or that the job must stop.
public struct MembershipDecision: Hashable, Codable, Sendable, CustomStringConvertible {
    /// Why a decision stops the job instead of continuing it.
    public enum StopCause: Hashable, Codable, Sendable {
        /// Fewer members than the minimum are left and no joiner is waiting.
        case belowMinimum(members: Int, minimum: Int)
        /// No member of the quorum holds an intact committed state.
        case noIntactState
    }

    /// The new membership (epoch = the previous epoch + 1, members in ring order).
    public var membership: Membership
    /// Every member continues from this committed step.
    public var redoStep: Int
    /// The member whose committed state is the reference (it holds `redoStep` intact).
    public var source: Int
    /// False when every member already holds the source's committed state.
    public var syncRequired: Bool
    /// Members of the previous epoch that are not in the new one.
    public var lost: [Int]
    /// Members admitted now (their ids are new).
    public var joined: [Int]
    /// Set when the job stops at this epoch instead of training on.
    public var stop: StopCause?

    /// Makes a decision.
    public init(membership: Membership, redoStep: Int, source: Int, syncRequired: Bool, lost: [Int], joined: [Int], stop: StopCause? = nil) {
        self.membership = membership
        self.redoStep = redoStep
        self.source = source
        self.syncRequired = syncRequired
        self.lost = lost
        self.joined = joined
        self.stop = stop
    }

    /// The epoch this decision starts.
    public var epoch: UInt64 { membership.epoch }

    /// "epoch 4: members [0, 2, 5], redo step 17 from member 0 (lost [1], joined [5])".
    public var description: String {
        var text = "epoch \(membership.epoch): members \(membership.ids), redo step \(redoStep) from member \(source)"
        if !lost.isEmpty || !joined.isEmpty { text += " (lost \(lost), joined \(joined))" }
        if let stop { text += ", stop: \(stop)" }
        return text
    }
}
