import Foundation
import PhalanxEtcd
import PhalanxTesting
import Testing

/// `phalanx-run --nnodes`: one agent per network-namespace host, the builtin node rendezvous
/// hosted by the agent of host 0. Whole nodes fail (agent and workers SIGKILLed at once), a new
/// node joins, every worker dies at once; the job finishes with the weights of a run that lost
/// nobody. Needs root for `ip netns`, as in CI.
@Suite(.serialized, .enabled(if: getuid() == 0, "network namespaces need root"))
struct NodeAgentTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let port = 29_400

    /// Starts one agent on each host in `hosts` (indexes into `namespaces`).
    /// `rendezvous` replaces the builtin endpoint (host 0) with other `--rdzv-…` options.
    static func agents(_ namespaces: NamespaceHosts, on hosts: [Int], nodes: String, trainer: [String], extra: [String] = [],
                       rendezvous: [String]? = nil, timeout: Int = 60) throws -> WorkerProcesses {
        let (executable, arguments) = NamespaceHosts.inNamespace(ExampleLaunchTests.binary("phalanx-run"), [
            "--nnodes", nodes, "--nproc-per-node", "2"] + (rendezvous ?? ["--rdzv-endpoint", "\(namespaces.address(0)):\(port)"]) + ["--rdzv-id", "job1",
            "--rdzv-last-call", "3", "--rdzv-timeout", "\(timeout)", "--max-restarts", "4",
        ] + extra + ["--", ExampleLaunchTests.binary("DigitsMLP"), "--hidden", "32", "--print-every", "100"] + trainer)
        return try WorkerProcesses(executable: executable, arguments: arguments, count: hosts.count) { index in
            ExampleLaunchTests.rootEnvironment.merging(namespaces.environment(on: hosts[index])) { _, new in new }
                .merging(["PHALANX_JOB_SECRET": "node-agent-test-secret"]) { _, new in new }
        }
    }

    static func directory(_ name: String) -> String {
        let path = NSTemporaryDirectory() + "phalanx-agents-\(name)-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// The same training on one host with `workers` workers and no fault: the weights to match.
    static func reference(workers: Int, trainer: [String]) throws -> [Float] {
        let out = directory("reference")
        let output = try PhalanxRunTests.launch(["--nproc", "\(workers)"], trainer: trainer + ["--save", "\(out)/w-{member}.safetensors"])
            .wait(timeout: .seconds(240))[0]
        #expect(output.status == 0, "\(output.stderr.suffix(800))")
        return try FinalWeights.load(at: "\(out)/w-0.safetensors")
    }

    static func expectWeights(in directory: String, count: Int, match expected: [Float]) throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".safetensors") }
        #expect(files.count == count, "\(files)")
        for file in files {
            let difference = FinalWeights.relativeDifference(try FinalWeights.load(at: "\(directory)/\(file)"), expected)
            #expect(difference < 1e-5, "\(file): relative difference \(difference) from the run that lost nobody")
        }
    }

    @Test func nodesFailAndJoinAndTheJobTrainsOnEvenWithoutTheRendezvousHost() throws {
        let namespaces = try NamespaceHosts(repository: Self.repository, count: 4)
        defer { namespaces.remove() }
        let out = Self.directory("nodes")
        let trainer = ["--steps", "1500", "--step-delay-ms", "10", "--checkpoint-every", "100"]
        let first = try Self.agents(namespaces, on: [0, 1, 2], nodes: "2:4", trainer: trainer + ["--save", "\(out)/w-{member}.safetensors"],
                                    extra: ["--metrics-port", "9464"])
        defer { for index in 0..<4 { namespaces.killEverything(on: index) } }
        try #require(Self.waitForCheckpoint(300, [first], timeout: .seconds(90)), "\(first.stderrSoFar(0).suffix(2000))")
        // Each agent serves its own node's two workers on --metrics-port (reached over the bridge).
        let page = HTTPGet.fetch(host: namespaces.address(2), port: 9464, path: "/metrics")
        #expect(page?.status == 200)
        let members = (page?.body ?? "").split(separator: "\n").filter { $0.hasPrefix("phalanx_step{member=") }
        #expect(members.count == 2, "\(page?.body.prefix(1500) ?? "no answer")")
        #expect(page?.body.contains("phalanx_launcher_workers_running 2") == true)
        // The workers hold their incarnation's own secret, never the one the agents share.
        let environments = namespaces.processes(on: 1).compactMap { FileManager.default.contents(atPath: "/proc/\($0)/environ") }
            .map { String(decoding: $0, as: UTF8.self) }.filter { $0.contains("PHALANX_ELASTIC=1") }
        #expect(environments.count == 2)
        #expect(environments.allSatisfy { $0.contains("PHALANX_JOB_SECRET=") && !$0.contains("node-agent-test-secret") })
        // Node 1 fails whole: its agent and both workers.
        #expect(Self.killed(namespaces, 1) >= 3)
        try #require(Self.waitForCheckpoint(500, [first], timeout: .seconds(60)), "the job did not go on: \(first.stderrSoFar(0).suffix(3000)) \(first.stderrSoFar(2).suffix(3000))")
        // A fourth node arrives; its workers join with the state over the network.
        let fourth = try Self.agents(namespaces, on: [3], nodes: "2:4", trainer: trainer + ["--save", "\(out)/w-{member}.safetensors"])
        try #require(fourth.waitForMarker("parameters, 1500 steps", count: 2, rank: 0, timeout: .seconds(60)), "\(fourth.stdoutSoFar(0).suffix(800))")
        // Node 0 fails whole: it hosted the node rendezvous, the witness and rank 0.
        try #require(Self.waitForCheckpoint(900, [first, fourth], timeout: .seconds(90)), "\(first.stderrSoFar(0).suffix(2000))")
        #expect(Self.killed(namespaces, 0) >= 3)
        let survivors = first.wait(timeout: .seconds(180))
        let joined = fourth.wait(timeout: .seconds(60))[0]
        for output in [survivors[2], joined] {
            #expect(output.status == 0, "\(output.stderr.suffix(2000))")
            #expect(output.stdout.components(separatedBy: "held-out accuracy").count - 1 == 2, "two workers finish: \(output.stdout.suffix(800))")
        }
        #expect(joined.stderr.contains("joining the running job"), "\(joined.stderr.suffix(1000))")
        #expect(survivors[2].stderr.contains("the node rendezvous is not reachable"), "\(survivors[2].stderr.suffix(1000))")
        try Self.expectWeights(in: out, count: 4, match: try Self.reference(workers: 6, trainer: trainer))
    }

    @Test(.enabled(if: EtcdCluster.isInstalled, "needs etcd-server (make test installs it)"))
    func withEtcdTheJobOutlivesTheRendezvousHostAndAnEtcdMember() throws {
        // Hosts 0-3 run node agents, hosts 4-6 the etcd cluster.
        let namespaces = try NamespaceHosts(repository: Self.repository, count: 7)
        defer { namespaces.remove() }
        let etcd = try EtcdCluster(members: (4...6).map {
            EtcdCluster.Member(name: "e\($0)", host: namespaces.address($0), clientPort: 2379, peerPort: 2380, namespace: namespaces.namespace($0))
        })
        defer { etcd.stop() }
        let backend = ["--rdzv-backend", "etcd", "--rdzv-endpoint", etcd.endpoints.joined(separator: ",")]
        let out = Self.directory("etcd")
        let trainer = ["--steps", "1500", "--step-delay-ms", "10", "--checkpoint-every", "100"]
        let first = try Self.agents(namespaces, on: [0, 1, 2], nodes: "2:4", trainer: trainer + ["--save", "\(out)/w-{member}.safetensors"], rendezvous: backend)
        defer { for index in 0..<4 { namespaces.killEverything(on: index) } }
        try #require(Self.waitForCheckpoint(300, [first], timeout: .seconds(90)), "\(first.stderrSoFar(0).suffix(2000))")
        // The etcd member every agent asks first dies; the other two keep a quorum.
        etcd.kill(0)
        // The node whose agent hosts the node rendezvous (elected through etcd) fails whole.
        // (Until the other two elected a leader, if it led the cluster, etcd answers "leader changed".)
        let survivorsOfEtcd = try EtcdClient(endpoints: Array(etcd.endpoints.dropFirst()))
        var host: EtcdClient.Entry?
        let electing = ContinuousClock.now + .seconds(15)
        while host == nil, ContinuousClock.now < electing {
            host = try? survivorsOfEtcd.get("/phalanx/job1/rendezvous")
            if host == nil { usleep(250_000) }
        }
        let hostAddress = try #require(host).value.split(separator: UInt8(ascii: ":")).first.map { String(decoding: $0, as: UTF8.self) }
        let hostIndex = try #require((0..<3).first { namespaces.address($0) == hostAddress }, "\(hostAddress ?? "?")")
        #expect(Self.killed(namespaces, hostIndex) >= 3)
        let survivors = (0..<3).filter { $0 != hostIndex }
        try #require(Self.waitForCheckpoint(500, [first], timeout: .seconds(60)), "the job did not go on: \(first.stderrSoFar(survivors[0]).suffix(3000))")
        // A fourth node arrives and its workers join.
        let fourth = try Self.agents(namespaces, on: [3], nodes: "2:4", trainer: trainer + ["--save", "\(out)/w-{member}.safetensors"], rendezvous: backend)
        try #require(fourth.waitForMarker("parameters, 1500 steps", count: 2, rank: 0, timeout: .seconds(60)), "\(fourth.stderrSoFar(0).suffix(1500))")
        let outputs = first.wait(timeout: .seconds(180))
        let joined = fourth.wait(timeout: .seconds(60))[0]
        for output in survivors.map({ outputs[$0] }) + [joined] {
            #expect(output.status == 0, "\(output.stderr.suffix(2000))")
            #expect(output.stdout.components(separatedBy: "held-out accuracy").count - 1 == 2, "two workers finish: \(output.stdout.suffix(800))")
        }
        #expect(joined.stderr.contains("joining the running job"), "\(joined.stderr.suffix(1000))")
        #expect((survivors.map { outputs[$0] } + [joined]).contains { $0.stderr.contains("hosting the node rendezvous on this node") },
                "another agent was elected to host the rendezvous: \((survivors.map { outputs[$0] } + [joined]).map { $0.stderr.suffix(1500) })")
        try Self.expectWeights(in: out, count: 6, match: try Self.reference(workers: 6, trainer: trainer))
    }

    @Test(.enabled(if: EtcdCluster.isInstalled, "needs etcd-server (make test installs it)"))
    func withEtcdAFrozenRendezvousHostIsReplacedAndStepsDownWhenItWakes() throws {
        let namespaces = try NamespaceHosts(repository: Self.repository, count: 4)
        defer { namespaces.remove() }
        let etcd = try EtcdCluster(members: [EtcdCluster.Member(name: "e", host: namespaces.address(3), clientPort: 2379, peerPort: 2380,
                                                                namespace: namespaces.namespace(3))])
        defer { etcd.stop() }
        let backend = ["--rdzv-backend", "etcd", "--rdzv-endpoint", etcd.endpoints[0]]
        let out = Self.directory("etcd-frozen")
        let trainer = ["--steps", "1200", "--step-delay-ms", "10", "--checkpoint-every", "100"]
        let first = try Self.agents(namespaces, on: [0, 1], nodes: "2:3", trainer: trainer + ["--save", "\(out)/w-{member}.safetensors"], rendezvous: backend)
        defer { for index in 0..<3 { namespaces.killEverything(on: index) } }
        try #require(Self.waitForCheckpoint(200, [first], timeout: .seconds(90)), "\(first.stderrSoFar(0).suffix(2000))")
        let store = try EtcdClient(endpoints: etcd.endpoints)
        let host = try #require(try store.get("/phalanx/job1/rendezvous")).value
        let hostIndex = try #require((0..<2).first { String(decoding: host, as: UTF8.self).hasPrefix(namespaces.address($0) + ":") })
        // The hosting agent freezes (its workers train on); its lease runs out and the other
        // agent is elected; a third node joins through the new host while the old one sleeps.
        first.signal(hostIndex, SIGSTOP)
        let third = try Self.agents(namespaces, on: [2], nodes: "2:3", trainer: trainer + ["--save", "\(out)/w-{member}.safetensors"], rendezvous: backend)
        let joined = third.waitForMarker("parameters, 1200 steps", count: 2, rank: 0, timeout: .seconds(60))
        let newHost = try store.get("/phalanx/job1/rendezvous")?.value
        first.signal(hostIndex, SIGCONT)
        try #require(joined, "\(third.stderrSoFar(0).suffix(1500)) \(first.stderrSoFar(1 - hostIndex).suffix(1500))")
        #expect(newHost != nil && newHost != host, "another agent hosts the rendezvous")
        let outputs = first.wait(timeout: .seconds(180)) + third.wait(timeout: .seconds(60))
        for output in outputs {
            #expect(output.status == 0, "\(output.stderr.suffix(2000))")
            #expect(output.stdout.components(separatedBy: "held-out accuracy").count - 1 == 2, "two workers finish: \(output.stdout.suffix(800))")
        }
        // Woken up, it stepped down: it fenced itself (its lease may have run out) or learnt
        // from etcd that the lease had expired, whichever came first.
        #expect(["lease may have run out; stepping down", "no longer hosts the node rendezvous"].contains { outputs[hostIndex].stderr.contains($0) },
                "\(outputs[hostIndex].stderr.suffix(1500))")
        try Self.expectWeights(in: out, count: 6, match: try Self.reference(workers: 6, trainer: trainer))
    }

    @Test func belowTheMinimumOfNodesTheJobSavesWaitsBoundedAndResumesWhenStartedAgain() throws {
        let namespaces = try NamespaceHosts(repository: Self.repository, count: 2)
        defer { namespaces.remove() }
        let out = Self.directory("below"), checkpoints = Self.directory("below-checkpoints")
        let trainer = ["--steps", "600", "--step-delay-ms", "10", "--checkpoint-every", "50"]
        let agents = try Self.agents(namespaces, on: [0, 1], nodes: "2", trainer: trainer + ["--join-wait-s", "2", "--save", "\(out)/w-{member}.safetensors"],
                                     extra: ["--checkpoint-dir", checkpoints], timeout: 15)
        defer { for index in 0..<2 { namespaces.killEverything(on: index) } }
        try #require(Self.waitForCheckpoint(200, [agents], timeout: .seconds(90)), "\(agents.stderrSoFar(0).suffix(2000))")
        // Node 1 fails whole: two members are left, below the minimum of 2 nodes × 2.
        #expect(Self.killed(namespaces, 1) >= 3)
        let started = ContinuousClock.now
        let survivor = agents.wait(timeout: .seconds(120))[0]
        #expect(ContinuousClock.now - started < .seconds(60), "the wait is bounded (join wait 2 s, then --rdzv-timeout 15 s)")
        #expect(survivor.status == 1, "\(survivor.stderr.suffix(2000))")
        #expect(survivor.stderr.contains("below the minimum of 4"), "\(survivor.stderr.suffix(2000))")
        #expect(survivor.stderr.contains("start the job again to resume from it"), "\(survivor.stderr.suffix(2000))")
        let saved = try FileManager.default.contentsOfDirectory(atPath: checkpoints).filter { $0.hasSuffix(".safetensors") }
        #expect(saved.contains { ($0.split(separator: "-").last.flatMap { Int($0.prefix(12)) } ?? 0) >= 200 }, "\(saved)")
        // Both nodes started again on the same checkpoints: the job resumes and ends like one that never stopped.
        let final = Self.directory("below-final")
        let again = try Self.agents(namespaces, on: [0, 1], nodes: "2", trainer: trainer + ["--save", "\(final)/w-{member}.safetensors"],
                                    extra: ["--checkpoint-dir", checkpoints])
        let outputs = again.wait(timeout: .seconds(180))
        for output in outputs { #expect(output.status == 0, "\(output.stderr.suffix(2000))") }
        #expect(outputs.contains { $0.stderr.contains("resumed from") }, "\(outputs.map { $0.stderr.suffix(1000) })")
        #expect(try FileManager.default.contentsOfDirectory(atPath: out).isEmpty, "nobody finished the stopped job")
        try Self.expectWeights(in: final, count: 4, match: try Self.reference(workers: 4, trainer: trainer))
    }

    /// With etcd the next incarnation is stored there first, and its witness votes apart from
    /// the first one's (both number their epochs from 1).
    @Test(arguments: ["builtin", "etcd"])
    func everyWorkerOfEveryNodeKilledAtOnceStartsAgainFromTheCheckpoint(backend: String) throws {
        let namespaces = try NamespaceHosts(repository: Self.repository, count: 3)
        defer { namespaces.remove() }
        var etcd: EtcdCluster?
        defer { etcd?.stop() }
        var rendezvous: [String]?
        if backend == "etcd" {
            let cluster = try EtcdCluster(members: [EtcdCluster.Member(name: "e", host: namespaces.address(2), clientPort: 2379, peerPort: 2380,
                                                                       namespace: namespaces.namespace(2))])
            etcd = cluster
            rendezvous = ["--rdzv-backend", "etcd", "--rdzv-endpoint", cluster.endpoints[0]]
        }
        let out = Self.directory("resume"), checkpoints = Self.directory("shared-checkpoints")
        let trainer = ["--steps", "600", "--step-delay-ms", "10", "--checkpoint-every", "20"]
        let agents = try Self.agents(namespaces, on: [0, 1], nodes: "2", trainer: trainer + ["--save", "\(out)/w-{member}.safetensors"],
                                     extra: ["--checkpoint-dir", checkpoints], rendezvous: rendezvous)
        defer { for index in 0..<2 { namespaces.killEverything(on: index) } }
        try #require(Self.waitForCheckpoint(200, [agents], timeout: .seconds(90)), "\(agents.stderrSoFar(0).suffix(2000))")
        // Every worker of both nodes at once; the agents live.
        let workers = (0..<2).flatMap { WorkerProcesses.children(of: agents.pid($0)) }
        #expect(workers.count == 4, "\(workers)")
        for worker in workers { kill(worker, SIGKILL) }
        let outputs = agents.wait(timeout: .seconds(180))
        for output in outputs {
            #expect(output.status == 0, "\(output.stderr.suffix(2000))")
            #expect(output.stderr.contains("incarnation 1"), "\(output.stderr.suffix(2000))")
            #expect(output.stdout.components(separatedBy: "held-out accuracy").count - 1 == 2, "two workers finish: \(output.stdout.suffix(800))")
        }
        #expect(outputs.contains { $0.stderr.contains("resumed from") }, "\(outputs.map { $0.stderr.suffix(1000) })")
        try Self.expectWeights(in: out, count: 4, match: try Self.reference(workers: 4, trainer: trainer))
    }

    /// Waits until a member of any agent in `groups` logged its durable checkpoint of `step`
    /// (the member with the lowest id writes them, wherever it runs).
    static func waitForCheckpoint(_ step: Int, _ groups: [WorkerProcesses], timeout: Duration) -> Bool {
        let marker = "checkpoint step \(step):"
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            for group in groups where group.processes.indices.contains(where: { group.stderrSoFar($0).contains(marker) }) { return true }
            usleep(20_000)
        }
        return false
    }

    static func killed(_ namespaces: NamespaceHosts, _ index: Int) -> Int { namespaces.killEverything(on: index) }
}
