import Foundation
import NIOCore
import PhalanxTelemetry
import Prometheus

/// A worker's metrics endpoint: `/metrics` (its Prometheus registry), `/healthz` (200 and the
/// health reading as JSON while the process lives) and `/readyz` (200 while it trains, else
/// 503). `metrics` records into the registry: hand it to the member (`ElasticMember.metrics`).
///
/// `PHALANX_METRICS_PORT` turns it on: a port number serves on that port (all interfaces, or
/// `PHALANX_METRICS_HOST`); `auto` serves on a free loopback port and, once the worker knows
/// its member id, says where on stdout (`phalanx-metrics port=P member=M`: how phalanx-run
/// finds its workers); absent or 0, it is off.
public final class WorkerMetricsServer: Sendable {
    /// The HTTP endpoint.
    public let endpoint: MetricsEndpoint
    /// The registry it serves.
    public let registry: PrometheusCollectorRegistry
    /// Phalanx's metrics, recorded into `registry`; its health reading is what `/healthz` says.
    public let metrics: PhalanxMetrics
    /// Whether it was asked for with `auto` (a launcher scrapes it and needs the announcement).
    public let automatic: Bool

    /// Serves `registry` on `host`:`port` (0: any free port).
    /// - Throws: when the address cannot be bound.
    public init(host: String, port: Int, registry: PrometheusCollectorRegistry, automatic: Bool = false) throws {
        self.registry = registry
        self.automatic = automatic
        let metrics = PrometheusExport.metrics(registry: registry)
        self.metrics = metrics
        endpoint = try MetricsEndpoint(host: host, port: port) { request, loop in
            loop.makeSucceededFuture(Self.reply(to: request.path, registry: registry, health: metrics.health))
        }
    }

    /// The server `PHALANX_METRICS_PORT` asks for, serving the process's registry; nil when
    /// the variable is absent or 0.
    /// - Throws: `MetricsConfigurationError` for a value that is not a port or `auto`, or the
    ///   bind error.
    public static func fromEnvironment(_ variables: [String: String] = ProcessInfo.processInfo.environment) throws -> WorkerMetricsServer? {
        guard let value = variables["PHALANX_METRICS_PORT"], value != "0", !value.isEmpty else { return nil }
        let automatic = value == "auto"
        guard automatic || UInt16(value) != nil else {
            throw MetricsConfigurationError(message: "PHALANX_METRICS_PORT must be a port number, 0 (off) or auto, not \(value)")
        }
        let host = variables["PHALANX_METRICS_HOST"] ?? (automatic ? "127.0.0.1" : "0.0.0.0")
        return try WorkerMetricsServer(host: host, port: automatic ? 0 : Int(value) ?? 0, registry: PrometheusExport.registry, automatic: automatic)
    }

    /// Tells the launcher (stdout) where member `member` serves its metrics, when it was asked
    /// for with `auto` (again after the member's id changed: evicted and admitted anew).
    public func announce(member: Int) {
        guard automatic else { return }
        print(Self.announcement(port: endpoint.port, member: member))
        fflush(nil)
    }

    /// The line that tells a launcher where a worker serves its metrics.
    public static func announcement(port: Int, member: Int) -> String { "phalanx-metrics port=\(port) member=\(member)" }

    /// The port and member of an announcement line (nil for any other line).
    public static func announced(_ line: String) -> (port: Int, member: Int)? {
        guard line.hasPrefix("phalanx-metrics ") else { return nil }
        var fields: [String: Int] = [:]
        for part in line.split(separator: " ").dropFirst() {
            let pair = part.split(separator: "=", maxSplits: 1)
            if pair.count == 2, let value = Int(pair[1].trimmingCharacters(in: .whitespacesAndNewlines)) { fields[String(pair[0])] = value }
        }
        guard let port = fields["port"], let member = fields["member"], (1...65535).contains(port) else { return nil }
        return (port, member)
    }

    static func reply(to path: String, registry: PrometheusCollectorRegistry, health: HealthStatus) -> HTTPReply {
        switch path {
        case "/metrics":
            return HTTPReply(contentType: HTTPReply.exposition, body: PrometheusExport.text(of: registry))
        case "/healthz":
            return HTTPReply(contentType: "application/json", body: health.json + "\n")
        case "/readyz":
            return HTTPReply(status: health.snapshot.ready ? .ok : .serviceUnavailable, contentType: "application/json", body: health.json + "\n")
        default:
            return .notFound(path, known: ["/metrics", "/healthz", "/readyz"])
        }
    }

    /// Stops serving.
    public func close() { endpoint.close() }
}
