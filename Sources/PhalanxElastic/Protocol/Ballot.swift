/// A proposal number of the agreement that moves a job from one epoch to the next: a round,
/// and the member that runs it (ties between coordinators are broken by id).
///
/// Acceptors promise to ignore every ballot below the highest they have seen for the epoch,
/// so two coordinators can never both get a proposal chosen for the same epoch.
public struct Ballot: Comparable, Hashable, Codable, Sendable, CustomStringConvertible {
    /// Grows whenever a coordinator starts over.
    public var round: Int
    /// The member id of the coordinator (`-1` for `Ballot.none`).
    public var coordinator: Int

    /// Makes a ballot.
    public init(round: Int, coordinator: Int) {
        self.round = round
        self.coordinator = coordinator
    }

    /// Below every real ballot: nothing promised yet.
    public static let none = Ballot(round: 0, coordinator: -1)

    /// Orders by round, then by coordinator id.
    public static func < (lhs: Ballot, rhs: Ballot) -> Bool {
        (lhs.round, lhs.coordinator) < (rhs.round, rhs.coordinator)
    }

    /// "3.1" (round 3, member 1).
    public var description: String { "\(round).\(coordinator)" }
}
