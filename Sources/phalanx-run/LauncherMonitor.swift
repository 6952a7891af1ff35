import CoreMetrics
import Foundation
import PhalanxPrometheus
import Prometheus

/// `--metrics-port`: one Prometheus endpoint for this launcher's workers and itself. Workers
/// start with `PHALANX_METRICS_PORT=auto` and announce their port; their samples are served
/// with `member` and `node` labels, next to the launcher's own counts (workers running, exits,
/// replacements, the fewest workers the job may go on with).
final class LauncherMonitor: Sendable {
    let aggregator: MetricsAggregator
    /// The `node` label of this launcher's workers.
    let node: String
    private let running: CoreMetrics.Gauge
    private let minimum: CoreMetrics.Gauge
    private let generation: CoreMetrics.Gauge
    private let exits: [String: CoreMetrics.Counter]
    private let replacements: CoreMetrics.Counter

    /// Serves on `host`:`port`; `minimumWorkers` is the job's minimum (this node's share of it).
    init(host: String, port: Int, node: String, minimumWorkers: Int) throws {
        let registry = PrometheusCollectorRegistry()
        aggregator = try MetricsAggregator(host: host, port: port, registry: registry)
        self.node = node
        let factory = PrometheusExport.factory(registry: registry)
        running = CoreMetrics.Gauge(label: "phalanx_launcher_workers_running", factory: factory)
        minimum = CoreMetrics.Gauge(label: "phalanx_launcher_workers_minimum", factory: factory)
        generation = CoreMetrics.Gauge(label: "phalanx_launcher_generation", factory: factory)
        exits = Dictionary(uniqueKeysWithValues: ["finished", "failed", "killed", "stopped"].map {
            ($0, CoreMetrics.Counter(label: "phalanx_launcher_worker_exits_total", dimensions: [("how", $0)], factory: factory))
        })
        replacements = CoreMetrics.Counter(label: "phalanx_launcher_replacements_total", factory: factory)
        minimum.record(minimumWorkers)
    }

    /// The endpoint's port.
    var port: Int { aggregator.endpoint.port }

    /// A line of worker `label`'s stdout: an announcement registers it.
    func workerSaid(_ line: String, label: String) {
        guard let (port, member) = WorkerMetricsServer.announced(line) else { return }
        aggregator.register(label, base: "http://127.0.0.1:\(port)", labels: ["member": "\(member)", "node": node])
    }

    /// Worker `label` ended: `finished`, `failed`, `killed` (by a signal not of this launcher's)
    /// or `stopped` (by this launcher: Ctrl-C, a new incarnation).
    func workerEnded(_ label: String, how: String) {
        aggregator.remove(label)
        exits[how]?.increment()
    }

    /// The supervising loop's reading: workers running, the job's incarnation.
    func observe(running count: Int, generation number: Int) {
        running.record(count)
        generation.record(number)
    }

    /// A replacement worker was started.
    func replacementStarted() { replacements.increment() }

    func close() { aggregator.close() }
}
