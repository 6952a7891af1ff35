import Foundation
import PhalanxTCP

/// What the training thread gathers about one change of members, from the failure it saw to
/// the restored state (the timings of `MembershipChange`).
struct ChangeRecord {
    var detectedAt: Date
    /// When the step that failed began (nil when no step was in flight).
    var stepBegan: Date?
    var cause: String
    var interruptedStep: Int
    var previousMembers: [Int]
    var agreedAt: Date?
    var rebuiltAt: Date?
    var membership: Membership?
    var decision: MembershipDecision?
    var keptConnections = 0
    var rejoined = false
}

extension ElasticMember {
    /// The data plane stopped: the first cause of this change, and when it was seen.
    func noteDetected(_ cause: String, step: Int, state: ElasticState) {
        guard change == nil else { return }
        metrics.notReady()
        change = ChangeRecord(detectedAt: Date(), stepBegan: stepBegan, cause: cause, interruptedStep: step, previousMembers: ringMembership?.ids ?? [])
        stepBegan = nil
    }

    /// A new membership was installed (the agreement is over).
    func noteAgreed(_ membership: Membership, decision: MembershipDecision?, state: ElasticState) {
        if change == nil {
            let cause = decision.map { $0.joined.isEmpty ? "membership change" : "members \($0.joined) joined" } ?? "membership change"
            noteDetected(cause, step: state.step, state: state)
        }
        change?.agreedAt = Date()
        change?.rebuiltAt = nil
        change?.membership = membership
        change?.decision = decision
    }

    /// Training resumes in the new membership: tell the callbacks what changed.
    func announceChange(_ state: ElasticState) {
        guard let record = change, let membership = record.membership, let agreedAt = record.agreedAt else { return }
        change = nil
        // A newcomer's own admission is not a change it lived through.
        guard !record.previousMembers.isEmpty || record.rejoined else { return }
        let now = Date()
        let decision = record.decision
        let reason = record.rejoined ? "rejoined as member \(id) after eviction (\(record.cause))" : record.cause
        let result = MembershipChange(
            epoch: membership.epoch, previousMembers: record.previousMembers, members: membership.ids,
            lost: record.previousMembers.filter { membership.position(of: $0) == nil },
            joined: record.rejoined ? [id] : decision?.joined ?? [],
            reason: reason, redoStep: decision?.redoStep ?? state.step, interruptedStep: record.interruptedStep,
            rank: membership.position(of: id) ?? 0, worldSize: membership.members.count, keptConnections: record.keptConnections,
            detectedAt: record.detectedAt, agreedAt: agreedAt, rebuiltAt: record.rebuiltAt ?? agreedAt, restoredAt: now)
        changes.append(result)
        let rebuilt = record.rebuiltAt ?? agreedAt
        metrics.membershipChanged(
            lost: result.lost.count, joined: result.joined.count, rejoined: record.rejoined,
            phases: .init(detect: record.stepBegan.map { record.detectedAt.timeIntervalSince($0) } ?? 0,
                          agree: agreedAt.timeIntervalSince(record.detectedAt),
                          rebuild: rebuilt.timeIntervalSince(agreedAt), restore: now.timeIntervalSince(rebuilt)),
            member: id)
        onMembershipChange?(result)
    }
}
