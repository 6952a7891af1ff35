import Foundation
import PhalanxElastic
import PhalanxTCP

/// A deterministic simulation of an elastic job: the real `MembershipCore` of every process,
/// a simulated clock, network (delay, reordering, loss, one- and two-way partitions) and data
/// plane (all-reduce steps and state transfers), and a nemesis that crashes, freezes,
/// partitions, restarts and adds processes. Invariants are checked after every event.
///
/// ```swift
/// let report = Simulation.run(SimulationOptions(seed: 42))
/// if !report.violations.isEmpty { print(Simulation.run(options.traced).trace) }  // replay
/// ```
public struct Simulation {
    /// Time in microseconds.
    var now: Int64 = 0
    var queue = EventQueue<SimulationEvent>()
    var processes: [SimulatedProcess] = []
    var witness = WitnessAcceptor()
    var random: SimulationRandom
    let options: SimulationOptions
    /// Blocked directed links (process indices; -1 is the witness), counted per partition.
    var blocked: [Link: Int] = [:]
    var partitions: [Int: [Link]] = [:]
    var lossUntil: Int64 = -1
    var faultsOver = false
    var faultsEnd: Int64
    var collectives: [CollectiveKey: Collective] = [:]
    /// Where newcomers find the job (what the coordinators publish).
    var directory: [MemberAddress] = []
    var directoryEpoch: UInt64 = 1
    var report: SimulationReport
    /// The membership decided for each epoch (the checker's view across all processes).
    var decided: [UInt64: MembershipDecision] = [:]
    var initialMembership: Membership
    let traceLog = TraceLog()
    /// The fault-free run's digest of every step.
    let canonical: [UInt64]

    /// The trace being written (a reference, so that tracing never needs exclusive access).
    final class TraceLog {
        var lines: [String] = []
    }

    /// A directed link between two processes (or the witness, -1).
    struct Link: Hashable {
        var from: Int
        var to: Int
    }

    static let witnessIndex = -1
    static let witnessAddress = MemberAddress(id: MembershipCore.witnessID, host: "sim", port: 9999)
    static let basePort: UInt16 = 10_000
    /// The transport's failure timeout (a collective that makes no progress for this long fails).
    static let failureTimeout: Int64 = 2_000_000

    /// Runs one schedule to its end and checks it.
    public static func run(_ options: SimulationOptions) -> SimulationReport {
        var simulation = Simulation(options: options)
        simulation.execute()
        return simulation.report
    }

    init(options: SimulationOptions) {
        self.options = options
        self.random = SimulationRandom(seed: options.seed)
        self.faultsEnd = Self.microseconds(options.faultWindow)
        self.report = SimulationReport(seed: options.seed, options: options)
        let members = (0..<options.members).map { MemberAddress(id: $0, host: "sim", port: Self.basePort + UInt16($0)) }
        initialMembership = Membership(epoch: 1, members: members, nextID: options.members)
        canonical = Self.canonicalDigests(through: options.lastStep)
        directory = members
    }

    mutating func execute() {
        for index in 0..<options.members {
            let address = initialMembership.members[index]
            processes.append(SimulatedProcess(
                index: index, address: address, core: MembershipCore(config: config(for: address)),
                state: SimulatedState(step: 0, digest: digest(step: 0))))
        }
        for index in 0..<options.members {
            let actions = processes[index].core.start(membership: initialMembership, id: index)
            perform(actions, for: index)
        }
        schedule(.inject, after: nextFaultDelay())
        queue.push(.endOfFaults, at: faultsEnd)
        let limit = faultsEnd + Self.microseconds(options.settleLimit)
        while let (time, event) = queue.pop() {
            now = time
            if now > limit || report.events >= options.maximumEvents { break }
            report.events += 1
            dispatch(event)
            if faultsOver, report.events % 64 == 0, processes.allSatisfy({ !$0.alive || $0.isDone }) { break }
            if !report.violations.isEmpty { break }
        }
        report.simulatedSeconds = Double(now) / 1e6
        finalChecks()
        report.trace = traceLog.lines
    }

    func config(for address: MemberAddress) -> MembershipConfig {
        var config = MembershipConfig(
            address: address, witness: options.witness ? Self.witnessAddress : nil, lastStep: options.lastStep,
            seed: options.seed &* 31 &+ UInt64(address.port))
        config.maximumMembers = 9
        if options.mutation == .noQuorum { config.quorum = .unsafeHalf }
        return config
    }

    // MARK: Events

    mutating func dispatch(_ event: SimulationEvent) {
        switch event {
        case let .deliver(to, message, from, fromIndex):
            if to == Self.witnessIndex {
                guard !isBlocked(from: fromIndex, to: to) else { return }
                trace { "witness ← \(message.kind) from \(from.port)" }
                for action in witness.handle(message, from: from) {
                    if case let .send(answer, address) = action { send(answer, from: Self.witnessIndex, to: address) }
                }
                return
            }
            guard processes[to].alive, !isBlocked(from: fromIndex, to: to) else { return }
            if processes[to].frozen { processes[to].held.append(event); return }
            trace { "p\(to) ← \(Self.describe(message)) from p\(fromIndex)" }
            feed(to, .received(message, from: from))
        case let .timer(index, timer):
            guard processes[index].alive else { return }
            if processes[index].frozen { processes[index].held.append(event); return }
            trace { "p\(index) timer \(timer.kind) #\(timer.generation)" }
            if timer.kind == .retryRound || timer.kind == .retryJoin { processes[index].core.updateDirectory(directory) }
            feed(index, .timerFired(timer))
        case let .complete(key):
            complete(key)
        case let .data(index, token, result):
            guard processes[index].alive, processes[index].token == token else { return }
            if processes[index].frozen { processes[index].held.append(event); return }
            apply(result, to: index)
        case let .deadline(index, token):
            guard processes[index].alive, processes[index].token == token else { return }
            if processes[index].frozen { processes[index].held.append(event); return }
            deadlinePassed(index)
        case .inject:
            guard !faultsOver else { return }
            injectFault()
            schedule(.inject, after: nextFaultDelay())
        case let .thaw(index):
            thaw(index)
        case let .heal(id):
            heal(id)
        case .spawn:
            spawn()
        case .endOfFaults:
            endFaults()
        }
    }

    /// Hands an event to a process's core and carries out what it asks.
    mutating func feed(_ index: Int, _ event: MembershipEvent) {
        let actions = processes[index].core.handle(event)
        perform(actions, for: index)
        checkDecisions(of: index)
    }

    mutating func perform(_ actions: [MembershipAction], for index: Int) {
        for action in actions {
            switch action {
            case let .send(message, address):
                send(message, from: index, to: address)
            case let .armTimer(timer, delay):
                schedule(.timer(index, timer), after: Self.microseconds(delay))
            case let .stopTraining(reason):
                trace { "p\(index) stops its data plane: \(reason)" }
                stopData(index)
            case let .installRing(membership):
                processes[index].ring = membership.members.compactMap { self.index(of: $0) }
                processes[index].ringEpoch = membership.epoch
            case let .synchronize(source, step):
                trace { "p\(index) synchronizes step \(step) from member \(source)" }
                startSync(index, source: source)
            case let .restore(step):
                let state = processes[index].state
                if state.step != step || state.damaged {
                    violation("member \(processes[index].core.id ?? -1) (p\(index)) was told to restore step \(step) but holds \(state.holding)")
                }
            case let .train(step):
                trace { "p\(index) trains from step \(step) in epoch \(processes[index].ringEpoch)" }
                startStep(index, step: step)
            case let .finished(step):
                trace { "p\(index) finished at step \(step)" }
            case let .publishDirectory(membership):
                // The peers file: read by newcomers at start, and by any process before it
                // retries (as the real driver does), never pushed into running processes. A
                // coordinator that re-decides an old epoch does not overwrite a newer one.
                if membership.epoch >= directoryEpoch {
                    directory = membership.members
                    directoryEpoch = membership.epoch
                }
            case let .evicted(reason):
                report.evictions += 1
                trace { "p\(index) evicted: \(reason)" }
            case let .stop(reason):
                trace { "p\(index) stops: \(reason)" }
            case let .noQuorum(epoch, reached, members):
                trace { "p\(index) found no quorum to leave epoch \(epoch): \(reached) of \(members) answered" }
            }
        }
    }

    // MARK: Network

    /// Sends a message; it may be lost (a partition, a lossy period) or arrive late.
    mutating func send(_ message: MembershipMessage, from sender: Int, to address: MemberAddress) {
        guard let target = index(of: address) else {
            trace { "p\(sender) → port \(address.port): \(message.kind) to nobody" }
            return
        }
        report.messages += 1
        if isBlocked(from: sender, to: target) { return }
        if now < lossUntil, random.chance(0.3) { return }
        var delay = random.milliseconds(0...3) * 1000 + Int64(random.below(1000)) + 100
        if random.chance(0.02) { delay += random.milliseconds(5...60) * 1000 }
        // Now and then a message arrives seconds late (a stale ballot, an old epoch), or twice.
        if random.chance(0.005) { delay += random.milliseconds(500...4000) * 1000 }
        let from = sender == Self.witnessIndex ? Self.witnessAddress : processes[sender].address
        schedule(.deliver(to: target, message, from: from, fromIndex: sender), after: delay)
        if random.chance(0.01) {
            schedule(.deliver(to: target, message, from: from, fromIndex: sender), after: delay + random.milliseconds(0...200) * 1000)
        }
    }

    func isBlocked(from: Int, to: Int) -> Bool {
        !blocked.isEmpty && blocked[Link(from: from, to: to), default: 0] > 0
    }

    /// The process listening at an address (the witness is -1), if any.
    func index(of address: MemberAddress) -> Int? {
        if address.port == Self.witnessAddress.port { return options.witness ? Self.witnessIndex : nil }
        let index = Int(address.port) - Int(Self.basePort)
        return processes.indices.contains(index) ? index : nil
    }

    mutating func schedule(_ event: SimulationEvent, after delay: Int64) {
        queue.push(event, at: now + max(0, delay))
    }

    static func microseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    }

    // MARK: Tracing

    func trace(_ line: () -> String) {
        guard options.trace else { return }
        let seconds = Double(now) / 1e6
        traceLog.lines.append("[\(String(format: "%9.4f", seconds)) s] \(line())")
    }

    static func describe(_ message: MembershipMessage) -> String {
        switch message {
        case let .prepare(epoch, ballot): "prepare(epoch \(epoch), ballot \(ballot))"
        case let .promise(epoch, ballot, sender, holding, accepted):
            "promise(epoch \(epoch), ballot \(ballot), member \(sender), \(holding)\(accepted.map { ", accepted \($0.ballot)" } ?? ""))"
        case let .accept(epoch, ballot, decision): "accept(epoch \(epoch), ballot \(ballot), \(decision))"
        case let .accepted(epoch, ballot, sender): "accepted(epoch \(epoch), ballot \(ballot), member \(sender))"
        case let .reject(epoch, ballot, promised): "reject(epoch \(epoch), ballot \(ballot), promised \(promised))"
        case let .alert(epoch, sender, suspects): "alert(epoch \(epoch), member \(sender), suspects \(suspects))"
        case let .decided(list): "decided(\(list.map(\.description).joined(separator: "; ")))"
        case let .behind(epoch): "behind(epoch \(epoch))"
        case let .join(address): "join(port \(address.port))"
        case let .redirect(list): "redirect(\(list.map(\.id)))"
        case let .refuse(reason, retry): "refuse(\(reason), retry: \(retry))"
        case let .finished(step): "finished(step \(step))"
        }
    }
}
