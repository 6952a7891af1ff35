import CoreMetrics
import PhalanxTelemetry
import Prometheus

/// The process's Prometheus registry and the factory that records Phalanx's metrics into it.
///
/// Nothing here bootstraps swift-metrics: a program keeps whatever backend it chose for its own
/// metrics, and `PHALANX_METRICS_PORT` adds Phalanx's in Prometheus beside it. A program that
/// wants all its swift-metrics in this registry bootstraps `factory(registry: registry)` itself.
public enum PrometheusExport {
    /// The registry a worker's endpoint serves.
    public static let registry = PrometheusCollectorRegistry()

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

    /// Phalanx's metrics, recorded into `registry`.
    public static func metrics(registry: PrometheusCollectorRegistry = registry) -> PhalanxMetrics {
        PhalanxMetrics(factory: factory(registry: registry))
    }

    /// `registry`'s metrics in the text exposition format.
    public static func text(of registry: PrometheusCollectorRegistry) -> String { registry.emitToString() }
}
