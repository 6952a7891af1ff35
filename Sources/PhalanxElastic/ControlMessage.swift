import Foundation
import PhalanxTCP

/// The elastic control protocol's messages (JSON over an authenticated member connection).
struct ControlMessage: Codable, Sendable {
    enum Kind: String, Codable, Sendable {
        /// member → coordinator: "epoch E failed; I have committed step S; I suspect these".
        case recover
        /// newcomer → any member: "admit me; I listen at this address".
        case join
        /// coordinator → members and joiners: the new membership, the step to redo and who has it.
        case decision
        /// "ask that member instead" (joins go to the leader).
        case redirect
        /// "your epoch is over and you are not in the new one".
        case stale
        /// "not admitted" (full, or stopping).
        case refuse
        /// coordinator → members: too few members and no joiner: save and stop.
        case stop
        /// "which epoch are you at?", answered at once with the same kind and the epoch.
        case probe
    }

    var kind: Kind
    var epoch: UInt64 = 0
    var sender: Int = 0
    var committedStep: Int?
    var suspects: [Int]?
    var address: MemberAddress?
    var decision: Decision?
    var reason: String?
    var memberCount: Int?

    init(kind: Kind, epoch: UInt64 = 0, sender: Int = 0) {
        self.kind = kind
        self.epoch = epoch
        self.sender = sender
    }

    func encoded() -> [UInt8] { (try? Array(JSONEncoder().encode(self))) ?? [] }

    static func decode(_ bytes: [UInt8]) throws -> ControlMessage {
        do { return try JSONDecoder().decode(ControlMessage.self, from: Data(bytes)) } catch {
            throw ElasticError.protocolViolation("undecodable control message: \(error)")
        }
    }
}

/// What a coordinator decided for a new epoch.
struct Decision: Codable, Sendable, Equatable {
    /// The new membership.
    var membership: Membership
    /// Every member continues from this committed step.
    var redoStep: Int
    /// The member whose committed state everyone takes.
    var source: Int
    /// False when every member already holds the source's committed state.
    var syncRequired: Bool
    /// Members of the previous epoch that are gone.
    var lost: [Int]
    /// Members admitted now.
    var joined: [Int]
    /// Why the membership changed.
    var reason: String
}
