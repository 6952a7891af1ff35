import Foundation
import PhalanxTesting
import Testing

/// The same trainers across "hosts" that are network namespaces with their own addresses on a
/// bridge (scripts/netns-hosts.sh), launched by `mpirun --hostfile` through an rsh agent that
/// runs `ip netns exec` (scripts/netns-rsh). Needs root for `ip netns`, as in CI.
@Suite(.serialized, .enabled(if: getuid() == 0, "network namespaces need root"))
struct MultiHostTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// The test hosts (namespaces at 10.77.S.2 and 10.77.S.3) and mpirun's hostfile for them.
    struct Hosts {
        let namespaces: NamespaceHosts
        let hostfile: String
        var prefix: String { namespaces.prefix }
        var network: String { namespaces.network }
        func address(_ index: Int) -> String { namespaces.address(index) }
    }

    /// Runs `body` with two namespace hosts on a subnet of their own, removed afterwards.
    static func withHosts(_ body: (Hosts) throws -> Void) throws {
        let namespaces = try NamespaceHosts(repository: repository, count: 2)
        defer { namespaces.remove() }
        let hosts = Hosts(namespaces: namespaces, hostfile: NSTemporaryDirectory() + "\(namespaces.prefix)-hosts")
        try "\(hosts.address(0)) slots=2\n\(hosts.address(1)) slots=2\n".write(toFile: hosts.hostfile, atomically: true, encoding: .utf8)
        try body(hosts)
    }

    /// Runs the job; with `finishers`, under `phalanx-run --mpirun`, which must end it within
    /// 5 s of that many members' exit lines (after a rank died, mpirun --enable-recovery alone
    /// does not exit when its daemons were started through an rsh agent).
    static func mpirun(_ hosts: Hosts, _ extra: [String], trainer: [String], finishers: Int? = nil) throws -> WorkerProcesses.Output {
        // mpirun's daemons, started in namespaces through the rsh agent, sometimes fail to come up
        // (mpirun then reports ORTE errors or crashes before any trainer ran). That is the test
        // bed, not Phalanx: launch again, at most twice, before judging what the trainers did.
        var output = try launch(hosts, extra, trainer: trainer, finishers: finishers)
        for _ in 0..<2 where !output.stdout.contains("\"event\":\"started\"") {
            output = try launch(hosts, extra, trainer: trainer, finishers: finishers)
        }
        return output
    }

    static func launch(_ hosts: Hosts, _ extra: [String], trainer: [String], finishers: Int?) throws -> WorkerProcesses.Output {
        let prefix = hosts.prefix
        var arguments = ["mpirun", "--hostfile", hosts.hostfile, "-np", "4", "--mca", "plm_rsh_agent", "\(repository)/scripts/netns-rsh"]
        arguments += ["--mca", "oob_tcp_if_include", hosts.network, "--mca", "btl_tcp_if_include", hosts.network, "--mca", "btl", "tcp,self"]
        arguments += ["-x", "PHALANX_NETNS_PREFIX", "-x", "OPENBLAS_NUM_THREADS=1"] + extra
        arguments += [ExampleLaunchTests.binary("DigitsMLP"), "--hidden", "32", "--json"] + trainer
        // Elastic jobs run under `phalanx-run --mpirun`: it ends mpirun once the survivors
        // finished (mpirun's remote daemons would wait on) and exits with their status.
        let wrapped = finishers != nil
        let job = try WorkerProcesses(
            executable: wrapped ? ExampleLaunchTests.binary("phalanx-run") : "/usr/bin/env",
            arguments: wrapped ? ["--mpirun", "--"] + arguments : arguments, count: 1
        ) { _ in
            ExampleLaunchTests.rootEnvironment.merging(["PHALANX_NETNS_PREFIX": prefix]) { _, new in new }
        }
        // Trainers start within seconds; a launch that shows none in 30 s is a failed launch.
        guard job.waitForMarker("\"event\":\"started\"", count: 1, rank: 0, timeout: .seconds(30)) else {
            job.signal(0, SIGKILL)
            return job.wait(timeout: .seconds(10))[0]
        }
        if let finishers {
            // The wrapper ends within 5 s of the last survivor's exit line, by itself.
            let done = job.waitForMarker("members=\(finishers)", count: finishers, rank: 0, timeout: .seconds(120))
            let output = job.wait(timeout: .seconds(5))[0]
            #expect(done && output.status == 0, "the wrapped mpirun did not end with the survivors: \(output.stderr.suffix(1500))")
            return output
        }
        return job.wait(timeout: .seconds(120))[0]
    }

    /// A fresh secret in a file only this user can read (the form the docs use).
    static func secretFile() throws -> String {
        let path = NSTemporaryDirectory() + "phalanx-secret-\(UUID().uuidString.prefix(8))"
        guard FileManager.default.createFile(atPath: path, contents: Data(UUID().uuidString.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        return path
    }

    static func finished(_ output: WorkerProcesses.Output) -> [[String: Any]] {
        output.jsonLines.filter { $0["event"] as? String == "done" }
    }

    @Test func mpiBackendAcrossHosts() throws {
        try Self.withHosts { hosts in
            let output = try Self.mpirun(hosts, [], trainer: ["--steps", "20"])
            let done = Self.finished(output)
            #expect(output.status == 0, "\(output.stderr.suffix(1500))")
            #expect(done.count == 4 && done.allSatisfy { $0["world_size"] as? Int == 4 }, "\(output.stdout.suffix(1500))")
            #expect(Set(done.compactMap { $0["params_hash"] as? String }).count == 1)
        }
    }

    @Test func elasticAcrossHostsSurvivesAKilledRank() throws {
        try Self.withHosts { hosts in
            let extra = ["--enable-recovery", "-x", "PHALANX_JOB_SECRET_FILE=\(try Self.secretFile())", "-x", "PHALANX_MASTER_ADDR=\(hosts.address(0))", "-x", "PHALANX_MASTER_PORT=29731"]
            let output = try Self.mpirun(hosts, extra, trainer: ["--elastic", "--steps", "100", "--kill-rank", "2", "--at-step", "30"], finishers: 3)
            let started = output.jsonLines.filter { $0["event"] as? String == "started" }
            // Each member advertises its own host's address.
            #expect(Set(started.compactMap { $0["host"] as? String }) == [hosts.address(0), hosts.address(1)], "\(output.stdout.suffix(1500)) \(output.stderr.suffix(1500))")
            let done = Self.finished(output)
            #expect(done.count == 3 && done.allSatisfy { $0["world_size"] as? Int == 3 && $0["steps"] as? Int == 100 }, "\(output.stdout.suffix(1500))")
            #expect(Set(done.compactMap { $0["params_hash"] as? String }).count == 1)
        }
    }
}
