import Logging
import PhalanxCollectives

extension MemberNode {
    /// What `buildRing` did with each neighbour connection.
    public struct RingRebuild: Sendable, Equatable {
        /// The connection to the right neighbour was kept (realigned), not reopened.
        public var keptRight: Bool
        /// The connection from the left neighbour was kept (realigned), not reopened.
        public var keptLeft: Bool
    }

    /// Builds the ring of `members` (in ring order) for `epoch`, as member `id`.
    ///
    /// Only changed neighbours reconnect: when `previous` (the interrupted ring) had the same
    /// right or left neighbour, that connection is realigned (its half-sent frame completed, a
    /// fence sent and acknowledged) and kept; a connection that cannot be realigned is reopened.
    /// Each member opens the connection to its right neighbour; the left one arrives at the
    /// listener. The returned transport is interruptible through `interruption`, and reports
    /// failures through `abortHandler` instead of abort frames.
    /// - Throws: `CollectiveError` (`.connectionLost`/`.timeout` naming the neighbour's ring
    ///   position) when a neighbour cannot be reached before `timeout`.
    public func buildRing(
        members: [MemberAddress], id: Int, epoch: UInt64, previous: TCPTransport?, previousMembers: [MemberAddress],
        timeout: Duration, interruption: Interruption, abortHandler: @escaping @Sendable (CollectiveError) -> Void
    ) throws -> (TCPTransport, RingRebuild) {
        guard let position = members.firstIndex(where: { $0.id == id }) else {
            throw CollectiveError(.invalidArgument, during: nil, rank: -1, peer: nil, message: "member \(id) is not in the new membership")
        }
        let count = members.count
        let none = RingRebuild(keptRight: false, keptLeft: false)
        guard count > 1 else {
            previous?.close()
            return (TCPTransport(rank: 0, worldSize: 1, epoch: epoch, right: nil, left: nil, logger: logger, protection: protection,
                                 interruption: interruption, abortHandler: abortHandler), none)
        }
        let deadline = Deadline(after: timeout)
        let rightMember = members[(position + 1) % count], leftMember = members[(position - 1 + count) % count]

        // Which old connections still join the same pair of members in the same direction.
        var keepRight = false, keepLeft = false
        if let previous, previous.worldSize > 1, let oldPosition = previousMembers.firstIndex(where: { $0.id == id }) {
            let oldCount = previousMembers.count
            keepRight = previousMembers[(oldPosition + 1) % oldCount].id == rightMember.id && previous.right != nil
            keepLeft = previousMembers[(oldPosition - 1 + oldCount) % oldCount].id == leftMember.id && previous.left != nil
        }
        var realigned = RingRebuild(keptRight: false, keptLeft: false)
        if let previous, keepRight || keepLeft {
            let outcome = previous.realign(
                keepRight: keepRight, keepLeft: keepLeft, epoch: epoch, deadline: Deadline(min(deadline.instant, .now + .seconds(1))))
            realigned = RingRebuild(keptRight: outcome.right, keptLeft: outcome.left)
        }
        // Take the kept connections; close the others: a changed neighbour sees its old one end.
        let old = previous?.detachConnections()
        if !realigned.keptRight { old?.right?.close() }
        if !realigned.keptLeft { old?.left?.close() }

        func failure(_ code: CollectiveError.Code, _ peer: Int, _ message: String) -> CollectiveError {
            CollectiveError(code, during: nil, rank: position, peer: peer, message: message)
        }
        let right: Socket
        if realigned.keptRight, let kept = old?.right {
            right = kept
        } else {
            do {
                right = try open(rightMember, intent: .ring, id: id, epoch: epoch, deadline: deadline)
            } catch {
                throw failure(.connectionLost, (position + 1) % count, "cannot reach \(rightMember) for epoch \(epoch): \(error)")
            }
            right.configureForData()
        }
        let left: Socket
        if realigned.keptLeft, let kept = old?.left {
            left = kept
        } else {
            guard let accepted = ringConnection(from: leftMember.id, epoch: epoch, deadline: deadline) else {
                throw failure(.timeout, (position - 1 + count) % count, "\(leftMember) did not connect for epoch \(epoch) within \(timeout)")
            }
            accepted.configureForData()
            left = accepted
        }
        let transport = TCPTransport(
            rank: position, worldSize: count, epoch: epoch, right: right, left: left, logger: logger, protection: protection,
            interruption: interruption, abortHandler: abortHandler)
        return (transport, realigned)
    }
}
