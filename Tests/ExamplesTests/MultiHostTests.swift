import Foundation
import PhalanxTesting
import Testing

/// The same trainers across "hosts" that are network namespaces with their own addresses on a
/// bridge (scripts/netns-hosts.sh), launched by `mpirun --hostfile` through an rsh agent that
/// runs `ip netns exec` (scripts/netns-rsh). Needs root for `ip netns`, as in CI.
@Suite(.serialized, .enabled(if: getuid() == 0, "network namespaces need root"))
struct MultiHostTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// Runs `body` with two namespace hosts (10.77.0.2 and 10.77.0.3), removed afterwards.
    static func withHosts(_ body: (_ prefix: String, _ hostfile: String) throws -> Void) throws {
        let prefix = "phx" + String(UUID().uuidString.prefix(4)).lowercased()
        let script = "\(repository)/scripts/netns-hosts.sh"
        let up = try WorkerProcesses(executable: script, arguments: ["up", prefix, "2"], count: 1) { _ in [:] }.wait(timeout: .seconds(30))[0]
        defer { _ = try? WorkerProcesses(executable: script, arguments: ["down", prefix, "2"], count: 1) { _ in [:] }.wait(timeout: .seconds(30)) }
        try #require(up.status == 0, "could not create the namespaces: \(up.stderr)")
        let hostfile = NSTemporaryDirectory() + "\(prefix)-hosts"
        try "10.77.0.2 slots=2\n10.77.0.3 slots=2\n".write(toFile: hostfile, atomically: true, encoding: .utf8)
        try body(prefix, hostfile)
    }

    /// Runs the job; with `finishers`, stops mpirun once that many members printed their final
    /// line (after a rank died, mpirun --enable-recovery does not exit on its own when its
    /// daemons were started through an rsh agent).
    static func mpirun(_ prefix: String, _ hostfile: String, _ extra: [String], trainer: [String], finishers: Int? = nil) throws -> WorkerProcesses.Output {
        var arguments = ["mpirun", "--hostfile", hostfile, "-np", "4", "--mca", "plm_rsh_agent", "\(repository)/scripts/netns-rsh"]
        arguments += ["--mca", "oob_tcp_if_include", "10.77.0.0/24", "--mca", "btl_tcp_if_include", "10.77.0.0/24", "--mca", "btl", "tcp,self"]
        arguments += ["-x", "PHALANX_NETNS_PREFIX", "-x", "OPENBLAS_NUM_THREADS=1"] + extra
        arguments += [ExampleLaunchTests.binary("DigitsMLP"), "--hidden", "32", "--json"] + trainer
        let job = try WorkerProcesses(executable: "/usr/bin/env", arguments: arguments, count: 1) { _ in
            ExampleLaunchTests.rootEnvironment.merging(["PHALANX_NETNS_PREFIX": prefix]) { _, new in new }
        }
        if let finishers {
            _ = job.waitForMarker("\"event\":\"done\"", count: finishers, rank: 0, timeout: .seconds(120))
            usleep(200_000)
            job.signal(0, SIGTERM)
            return job.wait(timeout: .seconds(5))[0]
        }
        return job.wait(timeout: .seconds(120))[0]
    }

    static func finished(_ output: WorkerProcesses.Output) -> [[String: Any]] {
        output.jsonLines.filter { $0["event"] as? String == "done" }
    }

    @Test func mpiBackendAcrossHosts() throws {
        try Self.withHosts { prefix, hostfile in
            let output = try Self.mpirun(prefix, hostfile, [], trainer: ["--steps", "20"])
            let done = Self.finished(output)
            #expect(output.status == 0, "\(output.stderr.suffix(1500))")
            #expect(done.count == 4 && done.allSatisfy { $0["world_size"] as? Int == 4 }, "\(output.stdout.suffix(1500))")
            #expect(Set(done.compactMap { $0["params_hash"] as? String }).count == 1)
        }
    }

    @Test func elasticAcrossHostsSurvivesAKilledRank() throws {
        try Self.withHosts { prefix, hostfile in
            let extra = ["--enable-recovery", "-x", "PHALANX_JOB_SECRET=\(UUID().uuidString)", "-x", "PHALANX_MASTER_ADDR=10.77.0.2", "-x", "PHALANX_MASTER_PORT=29731"]
            let output = try Self.mpirun(prefix, hostfile, extra, trainer: ["--elastic", "--steps", "100", "--kill-rank", "2", "--at-step", "30"], finishers: 3)
            let started = output.jsonLines.filter { $0["event"] as? String == "started" }
            // Each member advertises its own host's address.
            #expect(Set(started.compactMap { $0["host"] as? String }) == ["10.77.0.2", "10.77.0.3"], "\(output.stdout.suffix(1500)) \(output.stderr.suffix(1500))")
            let done = Self.finished(output)
            #expect(done.count == 3 && done.allSatisfy { $0["world_size"] as? Int == 3 && $0["steps"] as? Int == 100 }, "\(output.stdout.suffix(1500))")
            #expect(Set(done.compactMap { $0["params_hash"] as? String }).count == 1)
        }
    }
}
