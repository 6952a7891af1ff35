import Foundation
import PhalanxTCP

/// How an elastic job detects failures, agrees on members and checkpoints.
public struct ElasticOptions: Sendable {
    /// Time between heartbeats to ring neighbours.
    public var heartbeatInterval: Duration = .milliseconds(100)
    /// Heartbeat silence after which a neighbour is suspected of being hung. Shorter than
    /// `failureTimeout`, so that the hung member itself is named, not its stalled neighbours.
    public var heartbeatTimeout: Duration = .milliseconds(1500)
    /// A collective that makes no progress for this long fails (a backstop: a dead member
    /// closes its connections at once, a hung one is found by heartbeats first).
    public var failureTimeout: Duration = .seconds(2)
    /// Bound on reaching a member's listener and passing the handshake (a hung member accepts
    /// connections in its kernel but never answers).
    public var handshakeTimeout: Duration = .milliseconds(500)
    /// How long a coordinator waits for the members it has not heard from before it declares
    /// them lost.
    public var agreementTimeout: Duration = .seconds(2)
    /// Bound on building a ring (connecting to the new neighbours) for a new epoch.
    public var rebuildTimeout: Duration = .seconds(5)
    /// What protects the ring's data frames (`PHALANX_WIRE_PROTECTION` overrides it when set).
    public var wireProtection: WireProtection = .none
    /// The fewest members training may go on with.
    public var minimumMembers = 1
    /// The most members (joiners beyond it are refused).
    public var maximumMembers = 64
    /// How long survivors below `minimumMembers` wait for joiners before they stop.
    public var joinWaitTimeout: Duration = .seconds(10)
    /// Bound on forming the first ring (everyone registering with the rendezvous).
    public var startTimeout: Duration = .seconds(60)
    /// Directory for durable checkpoints (nil: none).
    public var checkpointDirectory: String?
    /// Write a durable checkpoint every this many committed steps.
    public var checkpointEvery = 100
    /// Durable checkpoints kept.
    public var checkpointsKept = 3
    /// A member evicted while hung (it woke up after the others moved on) asks to join again.
    public var rejoinAfterEviction = true

    /// The defaults: detect in ≤ 2 s, no minimum beyond one member.
    public init() {}

    /// Checks that the options make sense together.
    /// - Throws: `ElasticError.invalidOptions` naming the first problem.
    public func validate() throws {
        func fail(_ reason: String) -> ElasticError { .invalidOptions(reason) }
        guard minimumMembers >= 1 else { throw fail("minimumMembers must be at least 1, got \(minimumMembers)") }
        guard maximumMembers >= minimumMembers else { throw fail("maximumMembers (\(maximumMembers)) is below minimumMembers (\(minimumMembers))") }
        guard heartbeatInterval > .zero, heartbeatInterval < heartbeatTimeout else {
            throw fail("heartbeatInterval (\(heartbeatInterval)) must be positive and shorter than heartbeatTimeout (\(heartbeatTimeout))")
        }
        guard heartbeatTimeout < failureTimeout else {
            throw fail("heartbeatTimeout (\(heartbeatTimeout)) must be shorter than failureTimeout (\(failureTimeout)), so that heartbeats name a hung member before collectives time out")
        }
        for (name, value) in [("agreementTimeout", agreementTimeout), ("rebuildTimeout", rebuildTimeout), ("handshakeTimeout", handshakeTimeout),
                              ("startTimeout", startTimeout)] where value <= .zero {
            throw fail("\(name) must be positive, got \(value)")
        }
        guard checkpointEvery >= 1, checkpointsKept >= 1 else { throw fail("checkpointEvery and checkpointsKept must be at least 1") }
    }
}

extension ElasticOptions {
    /// The membership protocol's rules and timings for a process listening at `address`.
    func membershipConfig(address: MemberAddress, witness: MemberAddress?) -> MembershipConfig {
        var config = MembershipConfig(address: address, witness: witness, lastStep: Int.max, seed: UInt64(address.port) &* 0x9E37_79B9 &+ UInt64(getpid()))
        config.minimumMembers = minimumMembers
        config.maximumMembers = maximumMembers
        config.agreementTimeout = agreementTimeout
        config.coordinatorTimeout = agreementTimeout + agreementTimeout / 2
        config.quorumGrace = agreementTimeout / 4
        config.joinRetry = .milliseconds(200)
        return config
    }
}
