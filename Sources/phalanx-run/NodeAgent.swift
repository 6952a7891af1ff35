import Foundation
import Logging
import PhalanxElastic
import PhalanxEtcd
import PhalanxTCP

/// One node's agent of a multi-node job (`phalanx-run --nnodes`): finds the job's node
/// rendezvous (`builtin`: hosts it when this host owns the endpoint; `etcd`: hosts it when no
/// other agent does, found and elected through etcd), starts its local workers as the ranks
/// or joiners it is assigned, replaces the ones that fail, keeps its node's peers file up to date
/// from the rendezvous' member directory, and starts a new incarnation's workers when the job
/// had to start again from its checkpoints.
final class NodeAgent: @unchecked Sendable {
    struct Configuration {
        var minNodes: Int
        var maxNodes: Int
        var workersPerNode: Int
        var endpointHost: String
        var endpointPort: UInt16
        var jobID: String
        var lastCall: Duration
        var rendezvousTimeout: Duration
        var checkpoints: String
        var scratch: String
        var outDir: String?
        var maxRestarts: Int
        var restartWindow: Duration
        var checkpointEvery: Int?
        var arguments: [String]
        /// The etcd cluster's members (`--rdzv-backend etcd`); nil for `builtin`.
        var etcd: [String]?
        /// `--metrics-port`: serves this node's workers' metrics (nil: off).
        var monitor: LauncherMonitor?
    }

    private let configuration: Configuration
    private let credentials: JobCredentials
    private let localHost: String
    private let nodeID: String
    private let logger: Logger
    private let client: NodeRendezvousClient
    /// The job's keys in etcd (`etcd` backend).
    private let store: EtcdJobStore?
    // Guarded by `lock`: this node's membership witness of each incarnation, whose votes live
    // in etcd (`etcd` backend), and whether the agent finished (its lease is no longer renewed).
    private var witnesses: [Int: WitnessServer] = [:]
    private var finished = false
    // Guarded by `lock`.
    private let lock = NSLock()
    private var server: NodeRendezvousServer?
    private var lostGeneration: Int?
    private var done = false
    // The newest incarnation handed to the supervisor (it may not have switched yet).
    private var adopted = -1

    /// Sets up the agent; hosts the node rendezvous when the endpoint is a local address that is free.
    /// - Throws: `SocketError`/`ElasticError` when the credentials or local ports cannot be set up.
    init(_ configuration: Configuration, environment: [String: String], logger: Logger) throws {
        self.configuration = configuration
        let etcdHosts = (configuration.etcd ?? []).compactMap { MemberAddress(id: 0, parsing: $0.replacingOccurrences(of: "http://", with: ""))?.host }
        credentials = try JobCredentials.fromEnvironment(environment.merging(["PHALANX_JOB_ID": configuration.jobID]) { _, new in new },
                                                         addresses: [configuration.endpointHost] + etcdHosts + [environment["PHALANX_HOST"]].compactMap { $0 },
                                                         logger: logger)
        localHost = environment["PHALANX_HOST"] ?? MemberNode.localAddress(toward: configuration.endpointHost) ?? "127.0.0.1"
        nodeID = "\(localHost)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        self.logger = logger
        if let endpoints = configuration.etcd {
            store = EtcdJobStore(client: try EtcdClient(endpoints: endpoints), jobID: configuration.jobID, logger: logger)
            // Nowhere yet: the first poll fails and looks the host up in etcd.
            client = try NodeRendezvousClient(host: localHost, port: 0, localHost: localHost, credentials: credentials, logger: logger)
        } else {
            store = nil
            client = try NodeRendezvousClient(host: configuration.endpointHost, port: configuration.endpointPort, localHost: localHost,
                                              credentials: credentials, logger: logger)
        }
        _ = tryToHost()
    }

    /// Where the node rendezvous is found, for messages.
    private var rendezvousName: String {
        if let endpoints = configuration.etcd { return "found through etcd at \(endpoints.joined(separator: ","))" }
        return "at \(configuration.endpointHost):\(configuration.endpointPort)"
    }

    /// Hosts the node rendezvous if this host owns the endpoint and nobody holds it: binding
    /// fails elsewhere (not a local address) or while another agent of this host holds it. An
    /// agent calls this again whenever the rendezvous does not answer, so that on the endpoint's
    /// host a new rendezvous takes over (it adopts the running job from the agents' reports).
    private func tryToHost() -> Bool {
        if let store { return tryToHost(through: store) }
        lock.lock()
        defer { lock.unlock() }
        guard server == nil else { return false }
        var rendezvous = NodeRendezvous(minNodes: configuration.minNodes, maxNodes: configuration.maxNodes)
        rendezvous.lastCall = configuration.lastCall
        guard let hosted = try? NodeRendezvousServer(host: configuration.endpointHost, port: configuration.endpointPort, credentials: credentials,
                                                     rendezvous: rendezvous, logger: logger) else { return false }
        hosted.start()
        server = hosted
        return true
    }

    /// The `etcd` form: looks up who hosts the rendezvous; when nobody does, hosts it on a free
    /// port of this node, starting from the job's state in etcd, if the election (creating the
    /// `rendezvous` key) is won.
    private func tryToHost(through store: EtcdJobStore) -> Bool {
        lock.lock()
        if let current = server, current.isServing {
            lock.unlock()
            return false
        }
        let stale = server
        server = nil
        lock.unlock()
        // It stepped down (could not store its state, or its lease may have run out): free the
        // key for another host (the next renewal registers this agent again).
        if stale != nil { store.resign() }
        do {
            _ = try store.renew(node: nodeID)
            if let address = try store.rendezvousAddress() {
                client.retarget(address)
                return false
            }
            var rendezvous = NodeRendezvous(minNodes: configuration.minNodes, maxNodes: configuration.maxNodes)
            rendezvous.lastCall = configuration.lastCall
            let hosted = try NodeRendezvousServer(host: localHost, port: 0, credentials: credentials, rendezvous: rendezvous, hostsWitness: false,
                                                  keep: { store.keepState($0) }, fence: { store.holdsLease }, logger: logger)
            let won: Bool
            do {
                won = try store.campaign(address: "\(hosted.address.host):\(hosted.address.port)")
                // The state is read only once won: nobody can write it between this read and our first write.
                if won, let snapshot = try store.loadState() { hosted.restore(snapshot) }
            } catch {
                // The key may be this agent's after all: give it up with the lease.
                hosted.stop()
                store.resign()
                throw error
            }
            guard won else {
                hosted.stop()
                if let address = try store.rendezvousAddress() { client.retarget(address) }
                return false
            }
            hosted.start()
            lock.lock()
            server = hosted
            lock.unlock()
            client.retarget("\(hosted.address.host):\(hosted.address.port)")
            return true
        } catch {
            logger.debug("etcd: \(error)")
            return false
        }
    }

    /// Renews this agent's etcd lease every second while it runs; stops hosting the rendezvous
    /// when the lease had expired (its key went with it), and passes the registered agents on
    /// to the rendezvous it hosts (an agent whose lease ended is gone at once).
    private func maintainLease(_ store: EtcdJobStore, say: @Sendable (String) -> Void) {
        var unreachableSaid = false
        while true {
            lock.lock()
            let over = finished
            let hosted = server
            lock.unlock()
            if over { return }
            do {
                if try !store.renew(node: nodeID), let hosted {
                    say("this agent's etcd lease expired: it no longer hosts the node rendezvous")
                    hosted.stop()
                }
                if let hosted, hosted.isServing {
                    let listed = ContinuousClock.now
                    hosted.retain(registered: try store.registeredNodes(), listed: listed)
                }
                if unreachableSaid { say("etcd answers again") }
                unreachableSaid = false
            } catch {
                if !unreachableSaid { say("etcd is not reachable (\(error)); the workers go on") }
                unreachableSaid = true
            }
            usleep(1_000_000)
        }
    }

    /// Where this agent hosts the rendezvous, for messages.
    private var hostedName: String {
        if store != nil { return "on this node (elected through etcd)" }
        return "at \(configuration.endpointHost):\(configuration.endpointPort)"
    }

    /// Ends the agent's part: stops its etcd lease upkeep, gives up its lease (its registration
    /// and, if it hosts it, the rendezvous key) and its witness.
    private func finish() {
        lock.lock()
        done = true
        finished = true
        let serving = Array(witnesses.values)
        witnesses = [:]
        lock.unlock()
        store?.resign()
        for witness in serving { witness.stop() }
    }

    /// This node's witness of incarnation `generation` ("host:port"), started on first use
    /// (`etcd` backend; nil with `builtin`, or when no port can be bound).
    private func witness(generation: Int) -> String? {
        guard let store else { return nil }
        lock.lock()
        defer { lock.unlock() }
        if let running = witnesses[generation] { return running.environmentValue }
        guard let started = try? WitnessServer(host: localHost, credentials: credentials.forWorkers(incarnation: generation),
                                                votes: store.witnessVotes(generation: generation),
                                                logger: logger) else { return nil }
        started.start()
        witnesses[generation] = started
        return started.environmentValue
    }

    /// Whether this agent hosts the node rendezvous.
    var hostsRendezvous: Bool {
        lock.lock()
        defer { lock.unlock() }
        return server != nil
    }

    /// Runs the node's part of the job to its end.
    func run(say: @escaping @Sendable (String) -> Void) -> Supervisor.Outcome {
        if let store {
            let thread = Thread { [self] in maintainLease(store, say: say) }
            thread.start()
        }
        defer { finish() }
        say("node \(localHost): \(hostsRendezvous ? "hosting the node rendezvous \(hostedName)" : "using the node rendezvous \(rendezvousName)") (job \(configuration.jobID), \(configuration.minNodes)...\(configuration.maxNodes) nodes of \(configuration.workersPerNode) workers)")
        // The first assignment: start or join, within the rendezvous timeout.
        let deadline = ContinuousClock.now + configuration.rendezvousTimeout
        var lastReason = ""
        var first: AgentAssignment?
        while first == nil {
            guard ContinuousClock.now < deadline else {
                return Supervisor.Outcome(code: 1, summary: "no job formed within \(configuration.rendezvousTimeout): \(lastReason.isEmpty ? "the node rendezvous \(rendezvousName) never answered" : lastReason)")
            }
            do {
                let answer = try client.poll(report(generation: -1, peersFile: nil))
                if answer.reason != lastReason { say(answer.reason) }
                lastReason = answer.reason
                switch answer.role {
                case .start, .join: first = answer
                case .finished: return Supervisor.Outcome(code: 0, summary: "\(answer.reason); nothing to do")
                case .wait: break
                }
            } catch {
                let reason = "the node rendezvous \(rendezvousName) is not reachable (\(error))"
                if reason != lastReason { say(reason) }
                lastReason = reason
                if tryToHost() { say("hosting the node rendezvous \(hostedName) now") }
            }
            if first == nil { usleep(250_000) }
        }
        guard let first else { return Supervisor.Outcome(code: 1, summary: "no assignment") }
        lock.lock()
        adopted = first.generation
        lock.unlock()
        let supervisor = Supervisor(arguments: configuration.arguments, first: generation(for: first), makeNext: nil)
        supervisor.monitor = configuration.monitor
        supervisor.workersPerHost = configuration.workersPerNode
        Signals.forward(to: supervisor)
        do { try supervisor.startWorkers() } catch {
            return Supervisor.Outcome(code: 1, summary: "could not start the workers: \(error)")
        }
        let poller = Thread { [self] in pollWhileRunning(supervisor, say: say) }
        poller.start()
        var budget = Supervisor.Restarts(replacements: RestartBudget(limit: configuration.maxRestarts, window: configuration.restartWindow),
                                         checkpoints: configuration.checkpoints)
        budget.lostWait = configuration.rendezvousTimeout
        budget.onLost = { [self] _ in
            lock.lock()
            lostGeneration = supervisor.currentGeneration
            lock.unlock()
        }
        let outcome = supervisor.supervise(budget)
        lock.lock()
        done = true
        let hosted = server
        lock.unlock()
        if let hosted {
            // The other nodes still need the rendezvous (joins, the witness, starting again):
            // serve it until their leases ran out, within the rendezvous timeout.
            let deadline = ContinuousClock.now + configuration.rendezvousTimeout
            var said = false
            while ContinuousClock.now < deadline {
                let others = hosted.liveNodes(excluding: nodeID)
                if others == 0 { break }
                if !said {
                    say("keeping the node rendezvous up for \(others) other node(s)")
                    said = true
                }
                usleep(250_000)
            }
            hosted.stop()
        }
        return outcome
    }

    /// Reports to the rendezvous every 250 ms while the workers run; hands in new incarnations
    /// and passes the member directory and "finished" on to the node's peers file.
    private func pollWhileRunning(_ supervisor: Supervisor, say: @Sendable (String) -> Void) {
        var unreachableSaid = false
        while true {
            lock.lock()
            let over = done
            lock.unlock()
            if over { return }
            let current = supervisor.currentGeneration
            let peersFile = peersPath(current)
            do {
                let answer = try client.poll(report(generation: current, peersFile: peersFile, running: supervisor.runningWorkers))
                if unreachableSaid {
                    say("the node rendezvous answers again")
                    unreachableSaid = false
                }
                if let step = answer.finishedStep, PeersFile.finishedStep(peersFile) == nil {
                    PeersFile.markFinished(step, in: peersFile)
                }
                lock.lock()
                let lostHere = lostGeneration == current
                let newest = max(adopted, current)
                if answer.generation > newest, answer.role == .start || answer.role == .join { adopted = answer.generation }
                lock.unlock()
                if answer.role == .finished { supervisor.noteJobFinished() }
                if answer.generation > newest, answer.role == .start || answer.role == .join {
                    say("incarnation \(answer.generation): \(answer.reason)")
                    supervisor.adopt(generation(for: answer))
                } else if answer.generation == current, answer.generation == newest, answer.role == .join, answer.rejoin, lostHere {
                    // Our workers' directory was stale: other nodes still train. Join again.
                    say(answer.reason)
                    lock.lock()
                    lostGeneration = nil
                    lock.unlock()
                    supervisor.adopt(generation(for: answer))
                } else if answer.generation == current, let epoch = answer.epoch, !answer.members.isEmpty {
                    PeersFile.write(epoch: epoch, addresses: answer.members, to: peersFile)
                }
            } catch {
                if !unreachableSaid {
                    say("the node rendezvous is not reachable (\(error)); the workers go on")
                    unreachableSaid = true
                }
                if tryToHost() { say("hosting the node rendezvous \(hostedName) now (it adopts the running job)") }
            }
            usleep(250_000)
        }
    }

    private func report(generation: Int, peersFile: String?, running: Int = 0) -> AgentReport {
        var report = AgentReport(node: nodeID, host: localHost, slots: configuration.workersPerNode, generation: generation, running: running)
        if let peersFile {
            let contents = PeersFile.load(peersFile)
            report.epoch = contents.epoch
            report.members = contents.addresses
            report.finishedStep = contents.finishedStep
        }
        lock.lock()
        report.lost = lostGeneration == generation && generation >= 0
        lock.unlock()
        return report
    }

    private func peersPath(_ generation: Int) -> String { "\(configuration.scratch)/peers-\(generation)" }

    /// The incarnation an assignment describes, as the supervisor starts it.
    private func generation(for answer: AgentAssignment) -> Supervisor.Generation {
        let peersFile = peersPath(answer.generation)
        var environment: [String: String] = [
            "PHALANX_JOB_ID": configuration.jobID, "PHALANX_ELASTIC": "1", "PHALANX_CHECKPOINT_DIR": configuration.checkpoints,
            "PHALANX_PEERS_FILE": peersFile, "PHALANX_HOST": localHost,
            "PHALANX_MIN_MEMBERS": "\(configuration.minNodes * configuration.workersPerNode)",
            "PHALANX_MAX_MEMBERS": "\(configuration.maxNodes * configuration.workersPerNode)",
            // The incarnation's own secret (it takes precedence over a PHALANX_JOB_SECRET_FILE
            // the workers inherit): workers never see the one the agents share.
            "PHALANX_JOB_SECRET": String(decoding: credentials.forWorkers(incarnation: answer.generation).secret, as: UTF8.self),
        ]
        if let witness = witness(generation: answer.generation) ?? answer.witness { environment["PHALANX_WITNESS"] = witness }
        if let outDir = configuration.outDir { environment["PHALANX_OUT_DIR"] = outDir }
        if let every = configuration.checkpointEvery { environment["PHALANX_CHECKPOINT_EVERY"] = "\(every)" }
        if let epoch = answer.epoch, !answer.members.isEmpty { PeersFile.write(epoch: epoch, addresses: answer.members, to: peersFile) }
        let starts: [[String: String]]
        let formed: @Sendable () -> Bool
        if answer.role == .start {
            environment.merge([
                "PHALANX_WORLD_SIZE": "\(answer.worldSize)", "PHALANX_MASTER_ADDR": answer.rendezvousHost,
                "PHALANX_MASTER_PORT": "\(answer.rendezvousPort)", "PHALANX_RENDEZVOUS_EXTERNAL": "1",
            ]) { _, new in new }
            starts = (0..<configuration.workersPerNode).map { ["PHALANX_RANK": "\(answer.rankBase + $0)"] }
            // Formed once a member wrote the first membership (here, or on another node and
            // passed on by the rendezvous).
            formed = { PeersFile.epoch(peersFile) != nil }
        } else {
            starts = Array(repeating: ["PHALANX_JOIN": answer.members.joined(separator: ",")], count: configuration.workersPerNode)
            formed = { true }
        }
        return Supervisor.Generation(number: answer.generation, environment: environment, formed: formed, servers: [], starts: starts)
    }
}
