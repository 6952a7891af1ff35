import Foundation
import PhalanxElastic
import PhalanxEtcd
import PhalanxTCP
import PhalanxTesting
import Testing

/// The etcd backend's parts against a real etcd (Debian's `etcd-server`, started here on
/// loopback and stopped by PID): the client's transactions, leases and failover, the election
/// of the node rendezvous' host, and the witness votes shared by several witness servers.
@Suite(.serialized, .enabled(if: EtcdCluster.isInstalled, "needs etcd-server (make test installs it)"))
struct EtcdBackendTests {
    static let member = MemberAddress(id: 3, host: "127.0.0.1", port: 1234)

    @Test func compareAndSwapSucceedsOnlyOnTheRevisionRead() throws {
        let cluster = try EtcdCluster(loopback: 1)
        let client = try EtcdClient(endpoints: cluster.endpoints)
        #expect(try client.get("/t/a") == nil)
        let created = try client.put("/t/a", Array("one".utf8), if: [.modRevision("/t/a", 0)])
        #expect(created.done)
        // A second create loses: the key exists now.
        #expect(try !client.put("/t/a", Array("two".utf8), if: [.modRevision("/t/a", 0)]).done)
        let entry = try #require(try client.get("/t/a"))
        #expect(entry.value == Array("one".utf8) && entry.modRevision == created.revision)
        #expect(try client.put("/t/a", Array("two".utf8), if: [.modRevision("/t/a", entry.modRevision)]).done)
        // The revision read is stale now.
        #expect(try !client.put("/t/a", Array("three".utf8), if: [.modRevision("/t/a", entry.modRevision)]).done)
        #expect(try client.get("/t/a")?.value == Array("two".utf8))
        try client.put("/t/b", Array("x".utf8))
        #expect(try client.list(prefix: "/t/").map(\.key) == ["/t/a", "/t/b"])
    }

    @Test func aKeyGoesWithItsLease() throws {
        let cluster = try EtcdCluster(loopback: 1)
        let client = try EtcdClient(endpoints: cluster.endpoints)
        let lease = try client.grantLease(ttl: 2)
        try client.put("/t/leased", Array("v".utf8), lease: lease)
        #expect(try client.keepAlive(lease))
        try client.revoke(lease)
        #expect(try client.get("/t/leased") == nil)
        #expect(try !client.keepAlive(lease))
        let short = try client.grantLease(ttl: 1)
        try client.put("/t/short", Array("v".utf8), lease: short)
        let deadline = ContinuousClock.now + .seconds(10)
        while try client.get("/t/short") != nil, ContinuousClock.now < deadline { usleep(200_000) }
        #expect(try client.get("/t/short") == nil, "a key whose lease was not renewed is gone")
    }

    @Test func aDeadMemberIsSkippedAndNoMemberIsATypedErrorInTime() throws {
        let cluster = try EtcdCluster(loopback: 1)
        let dead = "127.0.0.1:\(try LoopbackPort.free())"
        let client = try EtcdClient(endpoints: [dead] + cluster.endpoints, timeout: .seconds(1))
        try client.put("/t/k", Array("v".utf8))
        #expect(try client.get("/t/k")?.value == Array("v".utf8))
        cluster.stop()
        let start = ContinuousClock.now
        #expect(throws: EtcdError.self) { try client.get("/t/k") }
        #expect(ContinuousClock.now - start < .seconds(5))
        #expect(throws: EtcdError.self) { try EtcdClient(endpoints: ["no-port"]) }
    }

    @Test func aFrozenMemberCostsPartOfOneDeadlineAndTheOthersAnswer() throws {
        let cluster = try EtcdCluster(loopback: 3)
        let client = try EtcdClient(endpoints: cluster.endpoints, timeout: .seconds(3))
        try client.put("/t/k", Array("v".utf8))
        // (If it led the cluster, the others elect a new leader within about a second.)
        cluster.signal(0, SIGSTOP)
        defer { cluster.signal(0, SIGCONT) }
        for _ in 0..<3 {
            let start = ContinuousClock.now
            #expect(try client.get("/t/k")?.value == Array("v".utf8))
            #expect(ContinuousClock.now - start < .milliseconds(3500), "within the deadline: \(ContinuousClock.now - start)")
        }
    }

    @Test func oneAgentHostsTheRendezvousAndALapsedHostCannotChangeTheJob() throws {
        let cluster = try EtcdCluster(loopback: 1)
        let first = EtcdJobStore(client: try EtcdClient(endpoints: cluster.endpoints), jobID: "j", ttl: 2)
        let second = EtcdJobStore(client: try EtcdClient(endpoints: cluster.endpoints), jobID: "j", ttl: 2)
        #expect(!first.holdsLease, "no lease before the first renewal")
        #expect(try first.renew(node: "a") && second.renew(node: "b"))
        #expect(first.holdsLease)
        #expect(try first.registeredNodes() == ["a", "b"])
        #expect(try first.campaign(address: "10.0.0.1:1"))
        #expect(try first.campaign(address: "10.0.0.1:1"), "a campaign asked again (its answer was lost) is still won")
        #expect(try !second.campaign(address: "10.0.0.2:2"), "one host at a time")
        #expect(try second.rendezvousAddress() == "10.0.0.1:1")
        var rendezvous = NodeRendezvous(minNodes: 1, maxNodes: 2)
        _ = rendezvous.handle(AgentReport(node: "a", host: "h", slots: 2, generation: 4, epoch: 9, members: ["10.0.0.1:5"]), now: .now)
        #expect(first.keepState(rendezvous.snapshot))
        #expect(!second.keepState(rendezvous.snapshot), "only the host writes the job's state")
        // The host stops renewing (frozen, cut off): it fences itself before etcd ends its
        // lease, and once etcd did, another agent takes over from the stored state.
        let deadline = ContinuousClock.now + .seconds(15)
        while try second.rendezvousAddress() != nil, ContinuousClock.now < deadline {
            _ = try second.renew(node: "b")
            usleep(300_000)
        }
        #expect(!first.holdsLease, "a host that could not renew stops answering")
        #expect(try second.rendezvousAddress() == nil, "the host's key went with its lease")
        #expect(try second.campaign(address: "10.0.0.2:2"))
        let stored = try #require(try second.loadState())
        #expect(stored.generation == 4 && stored.epoch == 9 && stored.members == ["10.0.0.1:5"])
        // The old host still believes it holds the key: etcd refuses its write.
        _ = rendezvous.handle(AgentReport(node: "a", host: "h", slots: 2, generation: 4, epoch: 10, members: ["10.0.0.1:6"]), now: .now)
        #expect(!first.keepState(rendezvous.snapshot), "the old host can no longer change the job")
        #expect(try second.loadState() == stored)
        #expect(try second.registeredNodes() == ["b"])
        // Woken up, the old host learns its lease expired and registers again.
        #expect(try !first.renew(node: "a"))
        #expect(try second.registeredNodes() == ["a", "b"])
        var restored = NodeRendezvous(minNodes: 1, maxNodes: 2)
        restored.restore(stored)
        #expect(restored.generation == 4)
    }

    @Test func witnessServersSharingEtcdVoteAsOneAcceptor() throws {
        let cluster = try EtcdCluster(loopback: 1)
        let store = EtcdJobStore(client: try EtcdClient(endpoints: cluster.endpoints), jobID: "w")
        let one = store.witnessVotes(generation: 0)
        let other = EtcdJobStore(client: try EtcdClient(endpoints: cluster.endpoints), jobID: "w").witnessVotes(generation: 0)
        let high = Ballot(round: 2, coordinator: 1), low = Ballot(round: 1, coordinator: 0)
        let decision = MembershipDecision(membership: Membership(epoch: 8, members: [Self.member], nextID: 4), redoStep: 10, source: 3,
                                          syncRequired: false, lost: [1], joined: [])
        // One server promises the high ballot; the other then refuses the low one.
        #expect(one.vote(on: .prepare(epoch: 7, ballot: high), from: Self.member).contains { if case .send(.promise(7, high, _, _, nil), _) = $0 { true } else { false } })
        #expect(other.vote(on: .accept(epoch: 7, ballot: low, decision: decision), from: Self.member) == [
            .send(.reject(epoch: 7, ballot: low, promised: high), to: Self.member),
        ])
        // The high ballot's accept goes through either server, and a later prepare learns it.
        #expect(other.vote(on: .accept(epoch: 7, ballot: high, decision: decision), from: Self.member) == [
            .send(.accepted(epoch: 7, ballot: high, sender: MembershipCore.witnessID), to: Self.member),
        ])
        let higher = Ballot(round: 3, coordinator: 2)
        let answer = one.vote(on: .prepare(epoch: 7, ballot: higher), from: Self.member)
        #expect(answer.contains { if case let .send(.promise(7, _, _, _, accepted), _) = $0 { accepted?.decision == decision } else { false } })
        // The next incarnation numbers its epochs from 1 again: it sees none of these votes.
        let next = store.witnessVotes(generation: 1).vote(on: .prepare(epoch: 7, ballot: low), from: Self.member)
        #expect(next.contains { if case .send(.promise(7, low, _, _, nil), _) = $0 { true } else { false } }, "\(next)")
        // Many servers voting at once on one epoch: every vote is a compare-and-swap, so the
        // ballots promised only rise and exactly the highest prepare wins every later accept.
        let voters = try (0..<4).map { _ in EtcdJobStore(client: try EtcdClient(endpoints: cluster.endpoints), jobID: "w").witnessVotes(generation: 0) }
        DispatchQueue.concurrentPerform(iterations: 8) { index in
            _ = voters[index % 4].vote(on: .prepare(epoch: 11, ballot: Ballot(round: 10 + index, coordinator: index)), from: Self.member)
        }
        let top = Ballot(round: 17, coordinator: 7)
        for index in 0..<8 {
            let ballot = Ballot(round: 10 + index, coordinator: index)
            let answers = voters[index % 4].vote(on: .accept(epoch: 11, ballot: ballot, decision: decision), from: Self.member)
            let accepted = answers.contains { if case .send(.accepted, _) = $0 { true } else { false } }
            #expect(accepted == (ballot == top), "ballot \(ballot): \(answers)")
        }
    }
}
