import Foundation
import Phalanx
import PhalanxElastic
import PhalanxPrometheus
import PhalanxTelemetry
import PhalanxTesting

extension TrainWorkerCommand {
    /// The metrics overhead: one elastic member trains in alternating blocks of 10 steps with
    /// its metrics recorded into Prometheus (served on a loopback port and scraped every
    /// second, as a Prometheus would) and with metrics off (swift-metrics' no-op handler and no
    /// scrapes: what a job without PHALANX_METRICS_PORT runs). Same processes, ring and state.
    func metricsPaired(_ member: ElasticMember) throws {
        let server = try WorkerMetricsServer(host: "127.0.0.1", port: 0, registry: PrometheusExport.registry)
        defer { server.close() }
        let on = server.metrics
        let off = PhalanxMetrics.disabled()
        // Prometheus' scrapes, every `scrapeEvery` seconds, only while metrics are on.
        let scraping = ScrapeSwitch()
        let pause = UInt32(max(0.01, scrapeEvery) * 1e6)
        let scrapes = scrapeEvery > 0
        let scraper = Thread {
            while !scraping.finished {
                if scrapes, scraping.on { _ = HTTPGet.fetch(port: UInt16(server.endpoint.port), path: "/metrics", timeout: .seconds(2)) }
                usleep(pause)
            }
        }
        scraper.start()
        defer { scraping.finish() }
        let workload = try SyntheticWorkload(input: input, hidden: hidden, batch: batch)
        let state = ElasticState(model: workload.model, optimizer: workload.optimizer, policy: commitPolicy)
        var times: [Bool: [Double]] = [true: [], false: []]
        var block: [Double] = []
        var pairRatios: [Double] = []
        var pendingMedian: (enabled: Bool, median: Double)?
        var enabled = false
        var last = DispatchTime.now().uptimeNanoseconds
        member.onStepOutcome = { outcome in
            let now = DispatchTime.now().uptimeNanoseconds
            if case .committed = outcome {
                times[enabled, default: []].append(Double(now - last) / 1e3)
                block.append(Double(now - last) / 1e3)
            }
            last = now
        }
        let warmup = steps / 10 / 5
        for index in 0..<(steps / 10) {
            // on-off, off-on, …: neither mode always goes first; each pair of neighbouring
            // blocks gives one ratio, so drift over the run cancels.
            enabled = (index / 2) % 2 == index % 2
            member.metrics = enabled ? on : off
            scraping.on = enabled
            block.removeAll(keepingCapacity: true)
            last = DispatchTime.now().uptimeNanoseconds
            try member.run(state: state, until: index * 10 + 10) { step in
                try workload.step(step.index, position: step.rank, members: step.worldSize) { try step.communicator.allReduce($0, op: .sum) }
                member.metrics.record(loss: 0.5, samples: workload.sampler.globalBatchCount(step: step.index))
            }
            guard index >= warmup else { continue }
            // The block's mean: a scrape's cost lands on one step, which a median would hide.
            let median = block.reduce(0, +) / Double(max(block.count, 1))
            if let previous = pendingMedian, previous.enabled != enabled {
                pairRatios.append(enabled ? median / previous.median : previous.median / median)
                pendingMedian = nil
            } else {
                pendingMedian = (enabled, median)
            }
        }
        let scraped = PrometheusExport.text(of: PrometheusExport.registry).contains("phalanx_steps_total \(times[true]?.count ?? 0)")
        emit(["event": "done", "member": member.id, "world_size": member.worldSize,
              "on_step_us": Timing.median(of: Timing.steady(times[true] ?? [])), "off_step_us": Timing.median(of: Timing.steady(times[false] ?? [])),
              "pair_ratios": pairRatios, "on_steps": times[true]?.count ?? 0, "off_steps": times[false]?.count ?? 0, "recorded_every_on_step": scraped,
              "recording_us_per_step": Self.recordingCost(on), "parameters": workload.model.parameterCount])
        member.shutdown()
    }
}

extension TrainWorkerCommand {
    /// Microseconds the metrics calls of one step take, alone (a step commits, one all-reduce,
    /// the trainer's loss): the floor under any overhead the paired steps show.
    static func recordingCost(_ metrics: PhalanxMetrics, iterations: Int = 200_000) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        for index in 0..<iterations {
            metrics.allReduced(bytes: 40_000, seconds: 1e-4, members: 2)
            metrics.stepCommitted(step: index, worldSize: 2, epoch: 1, seconds: 1e-3)
            metrics.connectionsRefused(total: 0)
            metrics.record(loss: 0.5, samples: 64)
        }
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e3 / Double(iterations)
    }
}
