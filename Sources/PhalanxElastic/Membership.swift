import PhalanxTCP

/// The agreed list of members for one epoch, in ring order.
public struct Membership: Codable, Sendable, Hashable {
    /// Grows by one at every change; frames and handshakes carry it, so a stale member's
    /// messages are refused.
    public var epoch: UInt64
    /// The members in ring order (position = rank for this epoch).
    public var members: [MemberAddress]
    /// The id the next joiner gets (ids are never reused).
    public var nextID: Int

    /// Makes a membership.
    public init(epoch: UInt64, members: [MemberAddress], nextID: Int) {
        self.epoch = epoch
        self.members = members
        self.nextID = nextID
    }

    /// The member ids in ring order.
    public var ids: [Int] { members.map(\.id) }

    /// The ring position of member `id`, if it is one.
    public func position(of id: Int) -> Int? { members.firstIndex { $0.id == id } }

    /// The right and left ring neighbours of member `id` (one when there are two members, none
    /// when it is alone or not a member).
    public func neighbours(of id: Int) -> [MemberAddress] {
        guard let position = position(of: id), members.count > 1 else { return [] }
        let right = members[(position + 1) % members.count], left = members[(position - 1 + members.count) % members.count]
        return right == left ? [right] : [right, left]
    }

    /// The leader: the first member in ring order (it takes join requests).
    public var leader: MemberAddress? { members.first }
}
