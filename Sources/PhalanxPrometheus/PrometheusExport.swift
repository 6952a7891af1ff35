import CoreMetrics
import Prometheus

/// The process's Prometheus registry: made once, and bootstrapped as swift-metrics' backend,
/// so that everything the library records (`PhalanxMetrics`) lands in it.
///
/// swift-metrics takes one backend per process: a program that bootstrapped another one does
/// not call this (its backend gets the metrics instead).
public enum PrometheusExport {
    /// The registry, bootstrapped into swift-metrics on first use.
    public static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(factory(registry: registry))
        return registry
    }()

    /// A factory over `registry` with histogram buckets fit for recoveries (milliseconds to
    /// tens of seconds) and checkpoint writes.
    public static func factory(registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        let fine: [Duration] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000].map { .milliseconds($0) }
        for name in ["phalanx_recovery_phase_seconds", "phalanx_recovery_seconds", "phalanx_checkpoint_write_seconds"] {
            factory.durationHistogramBuckets[name] = fine
        }
        return factory
    }

    /// `registry`'s metrics in the text exposition format.
    public static func text(of registry: PrometheusCollectorRegistry) -> String { registry.emitToString() }
}
