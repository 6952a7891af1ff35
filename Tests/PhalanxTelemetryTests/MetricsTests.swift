import CoreMetrics
import Foundation
import MetricsTestKit
import PhalanxPrometheus
import PhalanxTelemetry
import PhalanxTesting
import Prometheus
import Testing

/// What the library records through swift-metrics, and how it is served to Prometheus.
@Suite struct MetricsTests {
    @Test func stepsChangesAllReducesAndCheckpointsLandInTheNamedSeries() throws {
        let backend = TestMetrics()
        let metrics = PhalanxMetrics(factory: backend)
        metrics.identify(member: 2, minimumWorldSize: 2)
        metrics.expectCheckpoints(every: 10)
        metrics.stepCommitted(step: 11, worldSize: 3, epoch: 4, seconds: 0.02)
        metrics.stepCommitted(step: 12, worldSize: 3, epoch: 4, seconds: 0.03)
        #expect(try backend.expectCounter("phalanx_steps_total").totalValue == 2)
        #expect(try backend.expectGauge("phalanx_step").lastValue == 12)
        #expect(try backend.expectGauge("phalanx_world_size").lastValue == 3)
        #expect(try backend.expectGauge("phalanx_world_size_minimum").lastValue == 2)
        #expect(try backend.expectGauge("phalanx_membership_epoch").lastValue == 4)
        #expect(try backend.expectGauge("phalanx_step_duration_seconds").lastValue == 0.03)
        // The age counts from the step before the first one this process committed.
        #expect(try backend.expectGauge("phalanx_checkpoint_age_steps").lastValue == 2)
        #expect(try backend.expectGauge("phalanx_checkpoint_interval_steps").lastValue == 10)
        metrics.checkpointWritten(step: 12, bytes: 4096, seconds: 0.004)
        metrics.stepCommitted(step: 13, worldSize: 3, epoch: 4, seconds: 0.02)
        #expect(try backend.expectGauge("phalanx_checkpoint_age_steps").lastValue == 1)
        #expect(try backend.expectGauge("phalanx_checkpoint_size_bytes").lastValue == 4096)
        #expect(try backend.expectGauge("phalanx_checkpoint_last_step").lastValue == 12)
        #expect(try backend.expectTimer("phalanx_checkpoint_write_seconds").values == [4_000_000])

        // A change that lost one member and admitted another: both causes, the four phases.
        metrics.membershipChanged(lost: 1, joined: 1, rejoined: false, phases: .init(detect: 0.5, agree: 0.01, rebuild: 0.002, restore: 0.003), member: 2)
        #expect(try backend.expectCounter("phalanx_membership_changes_total", [("cause", "lost")]).totalValue == 1)
        #expect(try backend.expectCounter("phalanx_membership_changes_total", [("cause", "joined")]).totalValue == 1)
        #expect(try backend.expectCounter("phalanx_membership_changes_total", [("cause", "rejoined")]).totalValue == 0)
        #expect(try backend.expectCounter("phalanx_members_lost_total").totalValue == 1)
        #expect(try backend.expectTimer("phalanx_recovery_phase_seconds", [("phase", "detect")]).values == [500_000_000])
        #expect(try backend.expectTimer("phalanx_recovery_phase_seconds", [("phase", "rebuild")]).values == [2_000_000])
        #expect(try backend.expectTimer("phalanx_recovery_seconds").values == [515_000_000])

        // NCCL's bus bandwidth: 4 MB over 4 members in 10 ms = 4e6 · 2·3/4 / 0.01.
        metrics.allReduced(bytes: 4_000_000, seconds: 0.01, members: 4)
        #expect(try backend.expectCounter("phalanx_allreduce_bytes_total").totalValue == 4_000_000)
        let busBandwidth = try #require(try backend.expectGauge("phalanx_allreduce_bus_bandwidth_bytes_per_second").lastValue)
        #expect(abs(busBandwidth - 6e8) < 1)

        // Refused connections arrive as a running total: only the increase is counted.
        metrics.connectionsRefused(total: 2)
        metrics.connectionsRefused(total: 2)
        metrics.connectionsRefused(total: 5)
        #expect(try backend.expectCounter("phalanx_connections_refused_total").totalValue == 5)
        metrics.record(loss: 0.75, samples: 64)
        #expect(try backend.expectGauge("phalanx_loss").lastValue == 0.75)
        #expect(try backend.expectCounter("phalanx_samples_total").totalValue == 64)
    }

    @Test func healthFollowsTheTrainingLoop() {
        let metrics = PhalanxMetrics(factory: TestMetrics())
        #expect(metrics.health.snapshot.ready == false)
        metrics.stepCommitted(step: 5, worldSize: 2, epoch: 3, seconds: 0.01)
        let snapshot = metrics.health.snapshot
        #expect(snapshot.live && snapshot.ready && snapshot.member == nil && snapshot.epoch == 3 && snapshot.step == 5 && snapshot.members == 2)
        metrics.stepDiscarded()
        #expect(metrics.health.snapshot.ready == false)
        #expect(metrics.health.json.contains("\"ready\":false"))
    }

    @Test func checkpointAgeStaysZeroWhereNoCheckpointsAreKept() throws {
        let backend = TestMetrics()
        let metrics = PhalanxMetrics(factory: backend)
        for step in 1...50 { metrics.stepCommitted(step: step, worldSize: 1, epoch: 1, seconds: 0.01) }
        #expect(try backend.expectGauge("phalanx_checkpoint_age_steps").lastValue ?? 0 == 0)
    }

    @Test func aWorkerServesMetricsHealthAndReadiness() throws {
        let server = try WorkerMetricsServer(host: "127.0.0.1", port: 0, registry: PrometheusCollectorRegistry())
        defer { server.close() }
        let metrics = server.metrics
        let port = UInt16(server.endpoint.port)
        metrics.stepCommitted(step: 7, worldSize: 2, epoch: 1, seconds: 0.01)
        let page = try #require(HTTPGet.fetch(port: port, path: "/metrics"))
        #expect(page.status == 200)
        #expect(page.body.contains("# TYPE phalanx_steps_total counter"), "\(page.body.prefix(400))")
        #expect(page.body.contains("phalanx_step 7"), "\(page.body.prefix(400))")
        #expect(page.body.contains("phalanx_membership_changes_total{cause=\"lost\"} 0"), "every cause exists from the start")
        let health = try #require(HTTPGet.fetch(port: port, path: "/healthz"))
        #expect(health.status == 200 && health.body.contains("\"step\":7") && health.body.contains("\"ready\":true"), "\(health.body)")
        #expect(HTTPGet.fetch(port: port, path: "/readyz")?.status == 200)
        metrics.stepDiscarded()
        #expect(HTTPGet.fetch(port: port, path: "/readyz")?.status == 503)
        #expect(HTTPGet.fetch(port: port, path: "/healthz")?.status == 200, "live while not ready")
        #expect(HTTPGet.fetch(port: port, path: "/nothing")?.status == 404)
    }

    @Test func theEnvironmentTurnsTheEndpointOnOrRejectsNonsense() throws {
        #expect(try WorkerMetricsServer.fromEnvironment([:]) == nil)
        #expect(try WorkerMetricsServer.fromEnvironment(["PHALANX_METRICS_PORT": "0"]) == nil)
        #expect(throws: MetricsConfigurationError.self) { try WorkerMetricsServer.fromEnvironment(["PHALANX_METRICS_PORT": "ninety"]) }
        #expect(throws: MetricsConfigurationError.self) { try WorkerMetricsServer.fromEnvironment(["PHALANX_METRICS_PORT": "70000"]) }
        let line = WorkerMetricsServer.announcement(port: 40123, member: 7)
        #expect(WorkerMetricsServer.announced(line + "\n")! == (40123, 7))
        #expect(WorkerMetricsServer.announced("phalanx-metrics port=0 member=1") == nil)
        #expect(WorkerMetricsServer.announced("member 7 of 3: phalanx-metrics") == nil)
    }

    @Test func theAggregatorLabelsEachWorkerAndSkipsADeadOne() throws {
        let registries = [PrometheusCollectorRegistry(), PrometheusCollectorRegistry()]
        let workers = try registries.map { try WorkerMetricsServer(host: "127.0.0.1", port: 0, registry: $0) }
        defer { workers.forEach { $0.close() } }
        for (index, worker) in workers.enumerated() {
            worker.metrics.stepCommitted(step: 10 + index, worldSize: 2, epoch: 1, seconds: 0.01)
            worker.metrics.membershipChanged(lost: 1, joined: 0, rejoined: false, phases: .init(detect: 0.1, agree: 0.01, rebuild: 0.01, restore: 0.01), member: index)
        }
        let aggregator = try MetricsAggregator(host: "127.0.0.1", port: 0, registry: PrometheusCollectorRegistry(), scrapeTimeout: .seconds(2))
        defer { aggregator.close() }
        for (index, worker) in workers.enumerated() {
            aggregator.register("\(index)", base: "http://127.0.0.1:\(worker.endpoint.port)", labels: ["member": "\(index)", "node": "n1"])
        }
        // A worker that died without being removed yet: its scrape fails, the rest is served.
        aggregator.register("9", base: "http://127.0.0.1:\(try LoopbackPort.free())", labels: ["member": "9", "node": "n1"])
        let port = UInt16(aggregator.endpoint.port)
        let page = try #require(HTTPGet.fetch(port: port, path: "/metrics"))
        #expect(page.status == 200)
        #expect(page.body.contains("phalanx_step{member=\"0\",node=\"n1\"} 10"), "\(page.body.prefix(600))")
        #expect(page.body.contains("phalanx_step{member=\"1\",node=\"n1\"} 11"))
        #expect(page.body.contains("phalanx_recovery_seconds_count{member=\"1\",node=\"n1\"} 1"))
        #expect(page.body.contains("phalanx_launcher_scrape_failures_total 1"), "\(page.body.prefix(300))")
        // One TYPE line per family, however many workers.
        #expect(page.body.components(separatedBy: "# TYPE phalanx_step gauge").count == 2)
        // Every family once (a real Prometheus reads the merged page in MonitoringTests).
        let parsed = ExpositionText(parsing: page.body)
        #expect(Set(parsed.families.map(\.name)).count == parsed.families.count)
        let health = try #require(HTTPGet.fetch(port: port, path: "/healthz"))
        #expect(health.body.contains("\"member\":\"9\",\"node\":\"n1\",\"health\":{\"live\":false"), "\(health.body)")
        #expect(HTTPGet.fetch(port: port, path: "/readyz")?.status == 503, "a dead worker is not ready")
        aggregator.remove("9")
        #expect(HTTPGet.fetch(port: port, path: "/readyz")?.status == 200)
    }
}

/// The text format handling the aggregator relies on.
@Suite struct ExpositionTextTests {
    static let page = """
        # TYPE requests_total counter
        requests_total{code="200"} 5
        requests_total 1
        # TYPE latency_seconds histogram
        latency_seconds_bucket{le="0.1"} 1
        latency_seconds_bucket{le="+Inf"} 2
        latency_seconds_sum 0.3
        latency_seconds_count 2
        untyped_metric{} 3

        """

    @Test func familiesKeepAHistogramsPartsTogether() {
        let text = ExpositionText(parsing: Self.page)
        #expect(text.families.map(\.name) == ["requests_total", "latency_seconds", "untyped_metric"])
        #expect(text.families[1].samples.count == 4)
        #expect(text.families[1].type == "# TYPE latency_seconds histogram")
    }

    @Test func labelsGoFirstAndAreEscaped() {
        let text = ExpositionText(parsing: Self.page).labelled([("member", "a\"b\\c\nd")])
        let samples = text.families.flatMap(\.samples)
        #expect(samples[0] == #"requests_total{member="a\"b\\c\nd",code="200"} 5"#)
        #expect(samples[1] == #"requests_total{member="a\"b\\c\nd"} 1"#)
        #expect(samples.last == #"untyped_metric{member="a\"b\\c\nd"} 3"#)
    }

    @Test func mergingTwoSourcesGivesOneFamilyEach() {
        let a = ExpositionText(parsing: Self.page).labelled([("member", "0")])
        let b = ExpositionText(parsing: Self.page).labelled([("member", "1")])
        let merged = ExpositionText.merged([a, b])
        #expect(merged.families.map(\.name) == ["requests_total", "latency_seconds", "untyped_metric"])
        #expect(merged.families[1].samples.count == 8)
        #expect(merged.text.components(separatedBy: "# TYPE latency_seconds histogram").count == 2)
        #expect(merged.text.hasSuffix("\n"))
    }
}
