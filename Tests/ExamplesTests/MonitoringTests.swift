import Foundation
import PhalanxTesting
import Testing

/// The shipped alert rules under promtool, and a real Prometheus watching a phalanx-run job
/// through `--metrics-port` while a worker is killed.
@Suite(.serialized) struct MonitoringTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let monitoring = "\(repository)/monitoring"

    static func promtool(_ arguments: [String]) throws -> WorkerProcesses.Output {
        try WorkerProcesses(executable: "/usr/bin/promtool", arguments: arguments, count: 1) { _ in [:] }.wait(timeout: .seconds(60))[0]
    }

    @Test func promtoolChecksAndTestsTheShippedRules() throws {
        for arguments in [
            ["check", "rules", "\(Self.monitoring)/phalanx-alerts.yml"],
            ["test", "rules", "\(Self.monitoring)/phalanx-alerts.test.yml"],
            ["check", "config", "\(Self.monitoring)/prometheus-example.yml"],
        ] {
            let output = try Self.promtool(arguments)
            #expect(output.status == 0, "promtool \(arguments.joined(separator: " ")): \(output.stdout.suffix(1500)) \(output.stderr.suffix(1500))")
            #expect(output.stdout.contains("SUCCESS"), "\(output.stdout)")
        }
        // The dashboard is JSON with panels that query Prometheus.
        let dashboard = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(Self.monitoring)/grafana-dashboard.json"))) as? [String: Any]
        let panels = try #require(dashboard?["panels"] as? [[String: Any]])
        #expect(panels.count >= 8)
        #expect(panels.allSatisfy { !(($0["targets"] as? [[String: Any]]) ?? []).isEmpty })
    }

    /// Every `phalanx_…` name the rules and the dashboard use.
    static func referencedMetrics() throws -> Set<String> {
        let text = try String(contentsOfFile: "\(monitoring)/phalanx-alerts.yml", encoding: .utf8)
            + String(contentsOfFile: "\(monitoring)/grafana-dashboard.json", encoding: .utf8)
        let pattern = try NSRegularExpression(pattern: "phalanx_[a-z_]+")
        let range = NSRange(text.startIndex..., in: text)
        return Set(pattern.matches(in: text, range: range).compactMap { Range($0.range, in: text).map { String(text[$0]) } })
    }

    @Test func prometheusSeesTheJobAndFiresMemberLostWhenAWorkerIsKilled() throws {
        let metricsPort = try LoopbackPort.free()
        let prometheus = try PrometheusServer(configuration: """
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
              evaluation_interval: 1s
            rule_files:
              - \(Self.monitoring)/phalanx-alerts.yml
            scrape_configs:
              - job_name: phalanx-e2e
                static_configs:
                  - targets: ["127.0.0.1:\(metricsPort)"]
            """)
        defer { prometheus.stop() }
        let job = try WorkerProcesses(
            executable: "phalanx-run",
            arguments: ["--nproc", "3", "--metrics-port", "\(metricsPort)", "--metrics-host", "127.0.0.1", "--",
                        ExampleLaunchTests.binary("DigitsMLP"), "--hidden", "32", "--epochs", "60", "--step-delay-ms", "15", "--print-every", "200"],
            count: 1) { _ in ExampleLaunchTests.rootEnvironment }
        defer {
            job.signal(0, SIGTERM)
            _ = job.wait(timeout: .seconds(60))
        }
        func waitFor(_ what: String, within timeout: Duration, _ condition: () -> Bool) -> Bool {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if condition() { return true }
                usleep(250_000)
            }
            return false
        }
        // Before the kill: three members training, nothing lost, no alert.
        #expect(waitFor("three members", within: .seconds(60)) { prometheus.value("count(phalanx_step{job=\"phalanx-e2e\"} > 0)") == 3 },
                "\(job.stderrSoFar(0).suffix(1500)) \(prometheus.log.suffix(1000))")
        #expect(prometheus.value("max(phalanx_members_lost_total)") == 0)
        #expect(prometheus.value("max(phalanx_world_size)") == 3)
        // The rules were evaluated with the job in sight, and nothing fired.
        let seen = Date()
        #expect(waitFor("a rule evaluation", within: .seconds(10)) { (prometheus.lastRuleEvaluation() ?? .distantPast) > seen })
        #expect(prometheus.alerts(state: "firing").isEmpty && prometheus.alerts(state: "pending").isEmpty, "\(prometheus.alerts(state: "firing"))")

        // The kill, from outside: SIGKILL one of phalanx-run's workers.
        let workers = WorkerProcesses.children(of: job.pid(0))
        try #require(workers.count == 3, "\(workers)")
        kill(workers[2], SIGKILL)
        // The survivors count the loss, the launcher the dead worker; the alert fires.
        #expect(waitFor("the alert", within: .seconds(90)) { prometheus.alerts().contains("PhalanxMemberLost") },
                "alerts: \(prometheus.alerts(state: "pending")) \(job.stderrSoFar(0).suffix(1500))")
        // The alert may come from the launcher's count of killed workers before Prometheus has
        // scraped the survivors after their recovery: their counters are waited for.
        #expect(waitFor("the survivors' count", within: .seconds(30)) {
            prometheus.value("max(phalanx_members_lost_total)") == 1
                && (prometheus.value("sum(phalanx_recovery_phase_seconds_count{phase=\"agree\"})") ?? 0) >= 2
        }, "both survivors counted the loss and timed their recovery")
        #expect(prometheus.value("max(phalanx_members_lost_total)") == 1)
        #expect(prometheus.value("max(phalanx_membership_changes_total{cause=\"lost\"})") == 1)
        #expect(prometheus.value("max(phalanx_launcher_worker_exits_total{how=\"killed\"})") == 1)
        // Samples carry the member and node labels; the replacement (member 3) shows up.
        #expect(waitFor("the replacement", within: .seconds(60)) { prometheus.value("max(phalanx_step{member=\"3\"})") ?? 0 > 0 })

        // What the rules and the dashboard use is what the job exports.
        let stored = Set(prometheus.metricNames())
        let missing = try Self.referencedMetrics().filter { !stored.contains($0) && !stored.contains($0 + "_count") }
        #expect(missing.isEmpty, "referenced but not exported: \(missing.sorted())")

        // The launcher's health endpoint lists its workers.
        let health = try #require(HTTPGet.fetch(port: metricsPort, path: "/healthz"))
        #expect(health.status == 200 && health.body.contains("\"member\":\"3\""), "\(health.body)")
    }
}
