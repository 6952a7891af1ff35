import PhalanxElastic
import PhalanxTCP

/// The invariants, checked as the run goes and at its end:
/// - at most one membership (one decision) per epoch, across all processes;
/// - every committed step equals the fault-free run's (no two members commit different
///   states for one step);
/// - no member of a new epoch holds an intact commit newer than the step the epoch starts
///   from, and the job never stops for want of an intact state while a promiser holds one;
/// - once the faults stop, while a quorum of the job's membership lives, every live process
///   finishes (holding the fault-free run's final weights) within the settle limit.
extension Simulation {
    mutating func violation(_ text: String) {
        guard report.violations.count < 8 else { return }
        report.violations.append("t=\(String(format: "%.4f", Double(now) / 1e6)) s: \(text)")
        trace { "VIOLATION: \(text)" }
    }

    /// Looks at the decisions a process installed since the last look.
    mutating func checkDecisions(of index: Int) {
        let core = processes[index].core
        guard let last = core.decisions.last, last.epoch > processes[index].checkedEpoch else { return }
        for decision in core.decisions where decision.epoch > processes[index].checkedEpoch {
            if let known = decided[decision.epoch] {
                if known != decision {
                    violation("split brain: epoch \(decision.epoch) was decided twice: \(known) and \(decision)")
                }
            } else {
                decided[decision.epoch] = decision
                report.epochs += 1
                trace { "decided \(decision)" }
                if decision.stop == .noIntactState { checkNoHolder(decision) }
            }
        }
        processes[index].checkedEpoch = last.epoch
        let state = processes[index].state
        if last.stop == nil, core.membership.epoch == last.epoch, let id = core.id, !last.joined.contains(id),
           !state.damaged, state.step > last.redoStep {
            violation("member \(id) (p\(index)) holds committed step \(state.step) but epoch \(last.epoch) restarts from step \(last.redoStep)")
        }
    }

    /// A decision that stops the job for want of an intact state: no promiser may hold one.
    mutating func checkNoHolder(_ decision: MembershipDecision) {
        for member in decision.membership.members {
            guard let index = index(of: member), index >= 0 else { continue }
            let process = processes[index]
            if process.alive, !process.state.damaged {
                violation("the job stopped with no intact state at epoch \(decision.epoch), but member \(member.id) (p\(index)) still holds step \(process.state.step) intact")
            }
        }
    }

    /// Whether `alive` of the `count` members of a membership are a quorum.
    func isQuorum(alive: Int, of count: Int) -> Bool {
        alive * 2 > count || (options.witness && count % 2 == 0 && alive * 2 == count)
    }

    /// The memberships that must keep a quorum alive for the job to be able to go on: every
    /// membership from the newest one a live process knows of to the newest decided (those
    /// known only to dead processes are agreed on again, or re-learnt, through their
    /// predecessors), and a proposal a quorum of the newest already accepted (it will be
    /// re-proposed and installed). Empty when the job cannot be required to go on: it
    /// stopped, or no live process knows any membership.
    func requiredMemberships() -> [Membership] {
        if decided.values.contains(where: { $0.stop != nil }) { return [] }
        let knownByLive = processes.filter(\.alive).map { process in
            process.core.decisions.last?.epoch ?? (process.index < options.members ? 1 : 0)
        }.max() ?? 0
        guard knownByLive > 0 else { return [] }
        let newestEpoch = decided.keys.max() ?? 1
        var chain: [Membership] = []
        for epoch in knownByLive...max(knownByLive, newestEpoch) {
            guard let membership = epoch == 1 ? initialMembership : decided[epoch]?.membership else { continue }
            chain.append(membership)
        }
        let current = decided[newestEpoch]?.membership ?? initialMembership
        var acceptors: [Ballot: (decision: MembershipDecision, count: Int, witness: Bool)] = [:]
        for process in processes where process.core.membership.epoch == current.epoch && current.position(of: process.core.id ?? -1) != nil {
            if let proposal = process.core.acceptedProposal {
                acceptors[proposal.ballot, default: (proposal.decision, 0, false)].count += 1
            }
        }
        if let proposal = witness.acceptedProposal(epoch: current.epoch) {
            acceptors[proposal.ballot, default: (proposal.decision, 0, false)].witness = true
        }
        let chosen = acceptors.values.filter { entry in
            entry.count * 2 > current.members.count || (options.witness && current.members.count % 2 == 0 && entry.witness && entry.count * 2 == current.members.count)
        }
        return chain + chosen.map(\.decision.membership)
    }

    /// How many members of `membership` are alive.
    func living(_ membership: Membership) -> Int {
        membership.members.filter { member in index(of: member).map { $0 >= 0 && processes[$0].alive } ?? false }.count
    }

    /// After the run: the job must have finished when a quorum survived, with the fault-free
    /// run's final weights everywhere.
    mutating func finalChecks() {
        guard report.violations.isEmpty else { return }
        let memberships = requiredMemberships()
        let required = !memberships.isEmpty && memberships.allSatisfy { isQuorum(alive: living($0), of: $0.members.count) }
        report.livenessRequired = required
        let finalDigest = digest(step: options.lastStep)
        for process in processes where process.alive && process.core.phase == .finished {
            if process.state.digest != finalDigest || process.state.step != options.lastStep {
                violation("p\(process.index) finished with weights that differ from the fault-free run (\(process.state.holding))")
            }
        }
        let unfinished = processes.filter { $0.alive && !$0.isDone }
        report.finished = processes.contains { $0.alive && $0.core.phase == .finished } && unfinished.isEmpty
        if required, !unfinished.isEmpty {
            let stuck = unfinished.prefix(4).map { process in
                "p\(process.index) \(process.core.phase) at epoch \(process.core.membership.epoch), \(process.core.holding)"
            }
            violation("the faults stopped \(Double(now - faultsEnd) / 1e6) s ago with a quorum alive, but the job has not finished: \(stuck.joined(separator: "; "))")
        }
    }
}
