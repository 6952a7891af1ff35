import Foundation

/// What became of one step: committed everywhere, or discarded (and redone) with the reason.
public enum StepOutcome: Sendable, Equatable {
    /// The step's update was applied; `worldSize` members computed it.
    case committed(step: Int, worldSize: Int)
    /// The step was abandoned by every member (no partial update kept) and will be redone.
    case discarded(step: Int, reason: String)
}

/// One change of members, with when each phase of the recovery ended (wall clock, so that
/// timings from different processes compare).
public struct MembershipChange: Sendable {
    /// The new epoch.
    public var epoch: UInt64
    /// Member ids before the change, in ring order.
    public var previousMembers: [Int]
    /// Member ids after, in ring order.
    public var members: [Int]
    /// Members that were lost.
    public var lost: [Int]
    /// Members that joined.
    public var joined: [Int]
    /// Why it happened (the first failure seen here, or a join).
    public var reason: String
    /// Training continues with this step (the committed step everyone takes).
    public var redoStep: Int
    /// The step this member was running when the change began.
    public var interruptedStep: Int
    /// This member's new ring position.
    public var rank: Int
    /// The new member count.
    public var worldSize: Int
    /// Connections to the right and left neighbour that were kept (0–2).
    public var keptConnections: Int
    /// When this member noticed that the membership must change.
    public var detectedAt: Date
    /// When the new membership was known here.
    public var agreedAt: Date
    /// When the new ring was connected here.
    public var rebuiltAt: Date
    /// When the state was restored (and synchronised, when needed) here.
    public var restoredAt: Date

    /// "member 2 lost at step 57 (connection reset); ring rebuilt with 3 members in 0.41 s; step 57 redone".
    public var summary: String {
        var parts: [String] = []
        if !lost.isEmpty { parts.append("member\(lost.count > 1 ? "s" : "") \(lost.map(String.init).joined(separator: ", ")) lost at step \(interruptedStep) (\(reason))") }
        if !joined.isEmpty { parts.append("member\(joined.count > 1 ? "s" : "") \(joined.map(String.init).joined(separator: ", ")) joined") }
        if parts.isEmpty { parts.append("membership renewed (\(reason))") }
        let seconds = String(format: "%.3f", restoredAt.timeIntervalSince(detectedAt))
        parts.append("ring rebuilt with \(worldSize) member\(worldSize == 1 ? "" : "s") in \(seconds) s")
        parts.append("continuing at step \(redoStep)")
        return parts.joined(separator: "; ")
    }
}

/// What `ElasticMember.run` did.
public struct ElasticRunSummary: Sendable {
    /// Steps committed by this member (including those computed before a change).
    public var committedSteps: Int
    /// Steps discarded here.
    public var discardedSteps: Int
    /// Every change of members seen here.
    public var changes: [MembershipChange]
    /// True when `run` returned early because `requestStop` was called.
    public var stopped = false
}

/// What the step closure gets: where this member stands for this step.
public struct ElasticStep {
    /// The step index (fixes the global batch through `GlobalBatchSampler`).
    public let index: Int
    /// This member's ring position for the step (its slice of the global batch).
    public let rank: Int
    /// The number of members computing the step.
    public let worldSize: Int
    /// The membership epoch.
    public let epoch: UInt64
    /// The ring to all-reduce gradients on (its timeout is the failure timeout).
    public let communicator: ElasticCommunicator
}
