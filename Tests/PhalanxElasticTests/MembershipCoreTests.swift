import PhalanxElastic
import PhalanxTCP
import Testing

/// Scripted scenarios of the membership state machine: quorum and witness, partitions, a
/// source that dies during the state transfer, joins and evicted members.
@Suite("Membership core")
struct MembershipCoreTests {
    @Test("a 2-member job that loses one member goes on once the witness confirms")
    func twoMembersWithWitness() {
        var harness = CoreHarness(members: 2, witness: true)
        harness.dead.insert(101)
        harness.feed(100, .stepFailed(suspects: [1], reason: "connection closed"))
        harness.deliver()
        let survivor = harness.core(100)
        #expect(survivor.membership.epoch == 2)
        #expect(survivor.membership.ids == [0])
        #expect(survivor.phase == .training)
    }

    @Test("without a witness, one of two members never decides alone")
    func twoMembersWithoutWitness() {
        var harness = CoreHarness(members: 2, witness: false)
        harness.dead.insert(101)
        harness.feed(100, .stepFailed(suspects: [1], reason: "connection closed"))
        for _ in 0..<5 {
            harness.deliver()
            harness.fire(.roundDeadline)
            harness.fire(.retryRound)
            harness.fire(.awaitCoordinator)
        }
        harness.deliver()
        #expect(harness.core(100).membership.epoch == 1)
        #expect(harness.core(100).phase == .changing)
    }

    @Test("an even partition yields one job: the other half stops training, then rejoins after healing")
    func evenPartition() {
        var harness = CoreHarness(members: 4, step: 7)
        let left: [UInt16] = [100, 101], right: [UInt16] = [102, 103]
        harness.partition(left, right)
        for port in left { harness.feed(port, .stepFailed(suspects: [2, 3], reason: "cut off")) }
        for port in right { harness.feed(port, .stepFailed(suspects: [0, 1], reason: "cut off")) }
        for _ in 0..<6 {
            harness.deliver()
            harness.fire(.roundDeadline)
            harness.fire(.retryRound)
            harness.fire(.awaitCoordinator)
        }
        harness.deliver()
        let epochTwo = Set([100, 101, 102, 103].flatMap { harness.installed($0).filter { $0.epoch == 2 } })
        #expect(epochTwo.count == 1, "epoch 2 was decided as \(epochTwo)")
        let winners = [UInt16(100), 101, 102, 103].filter { harness.core($0).isMember && harness.core($0).membership.epoch == 2 }
        let losers = [UInt16(100), 101, 102, 103].filter { !winners.contains($0) }
        #expect(winners.count == 2)
        for port in losers {
            // Still agreeing, or told through the witness's vote that it was left out: either
            // way it does not train.
            #expect([MembershipCore.Phase.changing, .joining].contains(harness.core(port).phase), "the minority must not train")
            #expect(!harness.installed(port).contains { $0.epoch == 2 })
        }
        // Healing: the minority learns that it was left out, and rejoins under new ids.
        harness.cut = []
        for _ in 0..<8 {
            harness.fire(.awaitCoordinator)
            harness.fire(.retryRound)
            harness.fire(.retryJoin)
            harness.deliver()
            for port in [UInt16(100), 101, 102, 103] where harness.core(port).phase == .training {
                harness.feed(port, .stepCommitted(step: harness.core(port).holding.step + 1))
            }
            for port in [UInt16(100), 101, 102, 103] where harness.core(port).phase == .synchronizing {
                harness.feed(port, .transferFinished(holding: Holding(step: 8)))
            }
            harness.deliver()
        }
        let epochs = Set([UInt16(100), 101, 102, 103].map { harness.core($0).membership })
        #expect(epochs.count == 1, "after healing the members are in \(epochs)")
        #expect(epochs.first?.members.count == 4)
        for port in losers { #expect(harness.core(port).id ?? 0 >= 4, "a rejoining member gets a new id") }
    }

    @Test("the source dies during the transfer: a receiver keeps its commit and another holder takes over")
    func sourceDiesMidTransfer() throws {
        let decision = try transferScenario(receiversReport: Holding(step: 4))
        #expect(decision.membership.ids == [1, 2])
        #expect(decision.redoStep == 4)
        #expect(decision.source == 1)
        #expect(!decision.syncRequired)
        // The old bug (every receiver of a failed transfer called damaged) ends the job instead.
        var harness = CoreHarness(members: 3, step: 4)
        try runTransferScenario(&harness, receiversReport: Holding(step: 4, intact: false))
        guard case let .stopped(reason) = harness.core(101).phase else {
            Issue.record("expected the job to stop, got \(harness.core(101).phase)")
            return
        }
        #expect(reason.contains("no member of the quorum holds an intact committed state"))
    }

    func transferScenario(receiversReport holding: Holding) throws -> MembershipDecision {
        var harness = CoreHarness(members: 3, step: 4)
        try runTransferScenario(&harness, receiversReport: holding)
        #expect(harness.core(101).phase == .training)
        return try #require(harness.core(101).decisions.last)
    }

    /// Member 0 commits step 5 alone, member 1's step fails; the agreement makes member 0 the
    /// source; member 0 dies during the transfer.
    func runTransferScenario(_ harness: inout CoreHarness, receiversReport holding: Holding) throws {
        harness.feed(100, .stepCommitted(step: 5))
        harness.feed(101, .stepFailed(suspects: [], reason: "timeout"))
        harness.deliver()
        let first = try #require(harness.core(100).decisions.last)
        #expect(first.redoStep == 5)
        #expect(first.source == 0)
        #expect(first.syncRequired)
        #expect(harness.core(101).phase == .synchronizing)
        harness.dead.insert(100)
        harness.feed(101, .transferFailed(holding: holding, suspects: [0], reason: "source closed its connection"))
        harness.feed(102, .transferFailed(holding: holding, suspects: [0], reason: "source closed its connection"))
        harness.deliver()
    }

    @Test("a newcomer asking any member is admitted at the leader and takes the state")
    func join() {
        var harness = CoreHarness(members: 3, step: 10)
        harness.join(port: 200, directory: [102])
        harness.deliver()
        let newcomer = harness.core(200)
        #expect(newcomer.id == 3)
        #expect(newcomer.phase == .synchronizing)
        for port in [UInt16(100), 101, 102] {
            #expect(harness.core(port).membership.ids == [0, 1, 2, 3])
            #expect(harness.core(port).phase == .synchronizing)
        }
        let decision = harness.core(100).decisions.last
        #expect(decision?.joined == [3])
        #expect(decision?.redoStep == 10)
        #expect(harness.actions[100]?.contains(.publishDirectory(harness.core(100).membership)) == true)
    }

    @Test("a member that committed the last step alone ends the job: the others stop instead of redoing it")
    func finishedMemberEndsTheJob() {
        var harness = CoreHarness(members: 3, step: 9, lastStep: 10)
        harness.feed(100, .stepCommitted(step: 10))
        #expect(harness.core(100).phase == .finished)
        // The others lost the last step's all-reduce when member 0 left the ring.
        harness.feed(101, .stepFailed(suspects: [0], reason: "connection closed"))
        harness.deliver()
        harness.fire(.awaitCoordinator)
        harness.deliver()
        for port in [UInt16(101), 102] {
            #expect(harness.core(port).jobFinishedAt == 10)
            #expect(harness.core(port).phase == .stopped(reason: "the job finished at step 10 (another member holds it)"))
        }
        #expect(harness.core(100).phase == .finished)
        #expect(harness.cores.values.allSatisfy { $0.membership.epoch == 1 })
        // A newcomer that asks a member that stopped this way learns it too.
        harness.join(port: 200, directory: [102])
        harness.deliver()
        #expect(harness.core(200).jobFinishedAt == 10)
    }

    /// Three members at step 3; member 2 (process 102) cut off from the others, suspected by
    /// member 0 and removed by the two that remain.
    static func memberTwoCutOffAndRemoved() -> CoreHarness {
        var harness = CoreHarness(members: 3, step: 3)
        harness.partition([102], [100, 101])
        harness.feed(100, .suspected(id: 2, reason: "no heartbeat"))
        harness.deliver()
        harness.fire(.roundDeadline)
        harness.deliver()
        #expect(harness.core(100).membership.ids == [0, 1])
        return harness
    }

    @Test("a late suspicion of a member already removed starts no change")
    func lateSuspicionOfARemovedMember() {
        var harness = Self.memberTwoCutOffAndRemoved()
        let epoch = harness.core(100).membership.epoch
        // Member 101's heartbeat thread reports member 2 silent only now (it raced the change).
        harness.feed(101, .suspected(id: 2, reason: "no heartbeat for 1.6 s"))
        harness.deliver()
        harness.fire(.roundDeadline)
        harness.deliver()
        #expect(harness.core(100).membership.epoch == epoch)
        #expect(harness.core(101).membership.epoch == epoch)
    }

    @Test("a member evicted while frozen learns it when it wakes and rejoins as a new member")
    func evictedMemberRejoins() {
        var harness = Self.memberTwoCutOffAndRemoved()
        // Member 2 wakes: its step fails, it alerts epoch 1, and is told what happened.
        harness.cut = []
        harness.feed(102, .stepFailed(suspects: [], reason: "timeout"))
        harness.deliver()
        #expect(harness.actions[102]?.contains { if case .evicted = $0 { true } else { false } } == true)
        harness.fire(.retryJoin)
        harness.deliver()
        let rejoined = harness.core(102)
        #expect(rejoined.id == 3)
        #expect(rejoined.membership.ids == [0, 1, 3])
        #expect(rejoined.phase == .synchronizing)
    }
}
