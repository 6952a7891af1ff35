/// Why an elastic job could not go on.
public enum ElasticError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Fewer than the minimum number of members were left and no joiner came in time.
    case belowMinimum(members: Int, minimum: Int, step: Int, checkpoint: String?)
    /// This member was declared lost by the others (it was hung or cut off); it did not rejoin.
    case evicted(id: Int, epoch: UInt64, reason: String)
    /// A join request was refused.
    case joinRefused(reason: String)
    /// No member could be reached to join.
    case noMemberReachable(tried: [String], lastError: String)
    /// The survivors could not agree or rebuild the ring within the recovery bounds.
    case recoveryFailed(step: Int, reason: String)
    /// A peer sent a control message that could not be understood.
    case protocolViolation(String)
    /// `ElasticOptions` that contradict each other.
    case invalidOptions(String)
    /// The job finished before this process (a newcomer, or a member that was left out) was
    /// admitted: nothing is left to do, and that is not a failure.
    case jobFinished(step: Int?)

    /// A one-line explanation.
    public var description: String {
        switch self {
        case let .belowMinimum(members, minimum, step, checkpoint):
            return "only \(members) member(s) left at step \(step), below the minimum of \(minimum), and no joiner arrived; "
                + (checkpoint.map { "state saved to \($0); restart the job to resume from it" } ?? "no checkpoint directory was configured")
        case let .evicted(id, epoch, reason): return "member \(id) was removed from the job at epoch \(epoch): \(reason)"
        case let .joinRefused(reason): return "join refused: \(reason)"
        case let .noMemberReachable(tried, lastError): return "no member of the job admitted this process: \(tried.isEmpty ? lastError : tried.joined(separator: "; "))"
        case let .recoveryFailed(step, reason): return "recovery failed at step \(step): \(reason)"
        case let .protocolViolation(message): return "control protocol violation: \(message)"
        case let .invalidOptions(message): return "invalid elastic options: \(message)"
        case let .jobFinished(step):
            return "the job already finished\(step.map { " at step \($0)" } ?? "") without this process; nothing to do"
        }
    }
}

extension ElasticError {
    /// Whether this is `.noMemberReachable`: no live member of the job admitted this process
    /// (every member it knew of is gone or cut off). A launcher may restart the job from its
    /// durable checkpoints.
    public var isJobUnreachable: Bool {
        if case .noMemberReachable = self { true } else { false }
    }

    /// The exit status by which a worker tells its launcher that it found no live member of
    /// its job (`isJobUnreachable`; EX_TEMPFAIL): the launcher may start the job again from
    /// its checkpoints.
    public static let jobUnreachableExitStatus: Int32 = 75

    /// Whether this is `.belowMinimum`: the job stopped with its state saved because too few
    /// members were left; a launcher may start it again from that checkpoint once enough
    /// processes are there (exit `jobUnreachableExitStatus` too).
    public var isBelowMinimum: Bool {
        if case .belowMinimum = self { true } else { false }
    }

    /// Whether this is `.jobFinished` (a process that came too late exits successfully).
    public var isJobFinished: Bool {
        if case .jobFinished = self { true } else { false }
    }
}
