import PhalanxElastic
import Testing

/// The launcher's pure policies: the restart budget per window with its back-off, and the node
/// rendezvous of `phalanx-run --nnodes`.
struct LaunchPolicyTests {
    let start = ContinuousClock.now

    @Test func theRestartBudgetCountsPerWindowSoRareFailuresNeverRunOut() {
        var budget = RestartBudget(limit: 2, window: .seconds(60))
        let old: Duration = .seconds(30)
        #expect(budget.grant(lived: old, now: start) == .zero)
        #expect(budget.grant(lived: old, now: start + .seconds(1)) == .zero)
        #expect(budget.grant(lived: old, now: start + .seconds(2)) == nil, "a third failure within the window is one too many")
        // One failure an hour, for a day: never out of budget.
        for hour in 1...24 {
            #expect(budget.grant(lived: old, now: start + .seconds(3_600 * hour)) == .zero, "hour \(hour)")
        }
        #expect(budget.granted == 26)
    }

    @Test func workersThatDieYoungInARowAreReplacedAfterACappedExponentialBackOff() {
        var budget = RestartBudget(limit: 100, window: .seconds(600))
        let young: Duration = .milliseconds(100)
        let delays = (0..<9).map { budget.grant(lived: young, now: start + .seconds($0)) }
        #expect(delays == [.zero, .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(8), .seconds(8)])
        // A worker that lived resets it.
        #expect(budget.grant(lived: .seconds(60), now: start + .seconds(10)) == .zero)
        #expect(budget.grant(lived: young, now: start + .seconds(11)) == .zero)
        #expect(budget.grant(lived: young, now: start + .seconds(12)) == .milliseconds(250))
    }

    func report(_ node: String, slots: Int = 2, generation: Int = -1, lost: Bool = false) -> AgentReport {
        AgentReport(node: node, host: node, slots: slots, generation: generation, lost: lost)
    }

    @Test func theNodeRendezvousFormsAtTheMaximumAtOnceOrAfterTheLastCall() {
        var rendezvous = NodeRendezvous(minNodes: 2, maxNodes: 3)
        rendezvous.lastCall = .seconds(2)
        rendezvous.quietStart = .seconds(1)
        #expect(rendezvous.handle(report("a"), now: start).0.role == .wait)
        // The minimum is there: the last call runs.
        #expect(rendezvous.handle(report("b"), now: start + .milliseconds(100)).0.role == .wait)
        #expect(rendezvous.handle(report("a"), now: start + .seconds(1)).0.role == .wait)
        let (answer, formed) = rendezvous.handle(report("a"), now: start + .milliseconds(2_200))
        #expect(formed?.generation == 0 && formed?.worldSize == 4)
        #expect(answer.role == .start && answer.rankBase == 0 && answer.worldSize == 4)
        let b = rendezvous.handle(report("b", generation: -1), now: start + .milliseconds(2_300)).0
        #expect(b.role == .start && b.rankBase == 2)

        var full = NodeRendezvous(minNodes: 1, maxNodes: 2)
        full.quietStart = .seconds(1)
        _ = full.handle(report("a"), now: start)
        let (_, early) = full.handle(report("b", slots: 3), now: start + .milliseconds(10))
        #expect(early == nil, "nothing forms in the quiet start (a rendezvous started again hears the running job first)")
        let (_, at) = full.handle(report("b", slots: 3), now: start + .seconds(1))
        #expect(at?.generation == 0 && at?.worldSize == 5, "the maximum forms without a last call")
    }

    @Test func lateNodesJoinWithTheDirectoryUpToTheMaximumAndSparesWait() {
        var rendezvous = NodeRendezvous(minNodes: 1, maxNodes: 2)
        rendezvous.lastCall = .zero
        rendezvous.quietStart = .zero
        _ = rendezvous.handle(report("a"), now: start)
        // No member directory yet: a newcomer cannot be told whom to ask.
        #expect(rendezvous.handle(report("b"), now: start + .milliseconds(10)).0.role == .wait)
        var a = report("a", generation: 0)
        a.epoch = 3
        a.members = ["10.0.0.1:4000", "10.0.0.1:4001"]
        _ = rendezvous.handle(a, now: start + .milliseconds(20))
        let b = rendezvous.handle(report("b"), now: start + .milliseconds(30)).0
        #expect(b.role == .join && b.members == a.members && b.epoch == 3)
        let c = rendezvous.handle(report("c"), now: start + .milliseconds(40)).0
        #expect(c.role == .wait && c.reason.contains("spare"), "\(c.reason)")
        // An older epoch never replaces the directory.
        var stale = report("b", generation: 0)
        stale.epoch = 2
        stale.members = ["10.0.0.9:1"]
        _ = rendezvous.handle(stale, now: start + .milliseconds(50))
        #expect(rendezvous.handle(report("c"), now: start + .milliseconds(60)).0.members == a.members)
        // Node a's lease runs out: the spare takes its place.
        _ = rendezvous.handle(report("b", generation: 0), now: start + .seconds(6))
        #expect(rendezvous.handle(report("c"), now: start + .seconds(6)).0.role == .join)
    }

    @Test func aLostJobStartsAgainWithTheLiveNodesAndAFinishedJobStaysFinished() {
        var rendezvous = NodeRendezvous(minNodes: 2, maxNodes: 2)
        rendezvous.quietStart = .zero
        _ = rendezvous.handle(report("a"), now: start)
        _ = rendezvous.handle(report("b"), now: start)
        let lost = report("a", generation: 0, lost: true)
        let (answer, formed) = rendezvous.handle(lost, now: start + .seconds(1))
        #expect(formed?.generation == 1 && formed?.worldSize == 4)
        #expect(answer.role == .start && answer.generation == 1)
        // A late report of the same loss from the other node does not start a third incarnation.
        let late = report("b", generation: 0, lost: true)
        let (again, none) = rendezvous.handle(late, now: start + .seconds(1))
        #expect(none == nil && again.generation == 1 && again.role == .start)

        var done = report("b", generation: 1)
        done.finishedStep = 600
        #expect(rendezvous.handle(done, now: start + .seconds(2)).0.role == .finished)
        let lostAfter = report("a", generation: 1, lost: true)
        let (finished, noMore) = rendezvous.handle(lostAfter, now: start + .seconds(3))
        #expect(noMore == nil && finished.role == .finished && finished.finishedStep == 600)
    }

    @Test func aRendezvousStartedAgainAdoptsTheRunningJobInsteadOfFormingASecondOne() {
        var rendezvous = NodeRendezvous(minNodes: 1, maxNodes: 3)
        // A new agent on the endpoint's host reports first, then the running job's agents.
        #expect(rendezvous.handle(report("new"), now: start).0.role == .wait)
        var running = report("a", generation: 4)
        running.epoch = 9
        running.members = ["10.0.0.2:4000", "10.0.0.2:4001"]
        _ = rendezvous.handle(running, now: start + .milliseconds(250))
        #expect(rendezvous.generation == 4)
        let (answer, formed) = rendezvous.handle(report("new"), now: start + .seconds(3))
        #expect(formed == nil && answer.role == .join && answer.generation == 4 && answer.members == running.members)
        // When the adopted job loses every member, the next incarnation forms with the live nodes.
        let lost = report("a", generation: 4, lost: true)
        let (restart, next) = rendezvous.handle(lost, now: start + .seconds(4))
        #expect(next?.generation == 5 && next?.worldSize == 4 && restart.role == .start)
    }

    @Test func aLossOneNodeReportsWhileAnotherStillRunsWorkersIsNotALoss() {
        var rendezvous = NodeRendezvous(minNodes: 2, maxNodes: 2)
        rendezvous.quietStart = .zero
        _ = rendezvous.handle(report("a"), now: start)
        _ = rendezvous.handle(report("b"), now: start)
        var alive = report("b", generation: 0)
        alive.running = 2
        alive.epoch = 5
        alive.members = ["10.0.0.2:4000"]
        _ = rendezvous.handle(alive, now: start + .seconds(1))
        let lost = report("a", generation: 0, lost: true)
        let (first, none) = rendezvous.handle(lost, now: start + .seconds(2))
        #expect(none == nil && first.role == .wait, "node b still runs workers: \(first.reason)")
        _ = rendezvous.handle(alive, now: start + .seconds(6))
        let (again, stillNone) = rendezvous.handle(lost, now: start + .seconds(7))
        #expect(stillNone == nil && again.role == .join && again.rejoin && again.members == alive.members, "\(again.reason)")
        // Now node b lost its workers too: the loss is confirmed, the next incarnation forms.
        var gone = report("b", generation: 0)
        gone.running = 0
        _ = rendezvous.handle(gone, now: start + .seconds(8))
        let (restart, next) = rendezvous.handle(lost, now: start + .seconds(8))
        #expect(next?.generation == 1 && restart.role == .start && restart.generation == 1)
    }

    @Test func aRendezvousStartedAgainAfterTheJobWasLostNumbersTheNextIncarnationAfterIt() {
        var rendezvous = NodeRendezvous(minNodes: 1, maxNodes: 2)
        let lost = report("a", generation: 3, lost: true)
        #expect(rendezvous.handle(lost, now: start).0.role == .wait)
        let (answer, formed) = rendezvous.handle(lost, now: start + .seconds(3))
        #expect(formed?.generation == 4 && answer.role == .start && answer.generation == 4, "\(answer)")
    }
}
