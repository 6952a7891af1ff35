import AsyncHTTPClient
import CoreMetrics
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Prometheus

/// One endpoint for all the workers of a launcher (phalanx-run, a node agent): `/metrics`
/// scrapes every registered worker (each within `scrapeTimeout`), adds its `member` and `node`
/// labels, and serves their families merged with the launcher's own; `/healthz` lists every
/// worker's health reading; `/readyz` is 200 when every worker is ready.
///
/// A worker that does not answer is left out of that scrape (and counted in
/// `phalanx_launcher_scrape_failures_total`): a killed worker's series end, the others go on.
public final class MetricsAggregator: @unchecked Sendable {
    /// A worker being scraped.
    public struct Target: Sendable, Equatable {
        /// Where its endpoint is (`http://host:port`).
        public var base: String
        /// The labels its samples get (`member`, `node`).
        public var labels: [String: String]
    }

    /// The endpoint.
    public private(set) var endpoint: MetricsEndpoint!
    /// The launcher's own registry (served with the workers').
    public let registry: PrometheusCollectorRegistry
    /// How long one worker's scrape may take.
    public let scrapeTimeout: Duration
    private let targets = NIOLockedValueBox<[String: Target]>([:])
    private let failures: CoreMetrics.Counter

    /// Serves on `host`:`port` (0: any free port).
    /// - Throws: when the address cannot be bound.
    public init(host: String, port: Int, registry: PrometheusCollectorRegistry, scrapeTimeout: Duration = .seconds(2)) throws {
        self.registry = registry
        self.scrapeTimeout = scrapeTimeout
        failures = CoreMetrics.Counter(label: "phalanx_launcher_scrape_failures_total", factory: PrometheusExport.factory(registry: registry))
        endpoint = try MetricsEndpoint(host: host, port: port) { [weak self] path, loop in
            guard let self else { return loop.makeSucceededFuture(HTTPReply(status: .serviceUnavailable, body: "closing\n")) }
            return self.reply(to: path, on: loop)
        }
    }

    /// Scrapes worker `key` at `base` from now on, labelling its samples with `labels`.
    public func register(_ key: String, base: String, labels: [String: String]) {
        targets.withLockedValue { $0[key] = Target(base: base, labels: labels) }
    }

    /// Stops scraping worker `key` (it ended).
    public func remove(_ key: String) {
        _ = targets.withLockedValue { $0.removeValue(forKey: key) }
    }

    /// The workers scraped now, by key.
    public var registered: [String: Target] { targets.withLockedValue { $0 } }

    private func reply(to path: String, on loop: EventLoop) -> EventLoopFuture<HTTPReply> {
        let current = registered.sorted { $0.key.localizedStandardCompare($1.key) == .orderedAscending }.map(\.value)
        switch path {
        case "/metrics":
            let scrapes = current.map { target in fetch(target.base + "/metrics", on: loop).map { text in text.map { ExpositionText(parsing: $0).labelled(target.labels.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }) } } }
            return EventLoopFuture.whenAllSucceed(scrapes, on: loop).map { [registry] parts in
                let own = ExpositionText(parsing: PrometheusExport.text(of: registry))
                return HTTPReply(contentType: HTTPReply.exposition, body: ExpositionText.merged([own] + parts.compactMap { $0 }).text)
            }
        case "/healthz", "/readyz":
            let readings = current.map { target in fetch(target.base + "/healthz", on: loop).map { (target, $0) } }
            return EventLoopFuture.whenAllSucceed(readings, on: loop).map { results in
                var ready = !results.isEmpty
                var entries: [String] = []
                for (target, body) in results {
                    let labels = target.labels.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\"\(ExpositionText.escape($0.value))\"" }.joined(separator: ",")
                    let reading = body?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "{\"live\":false,\"ready\":false}"
                    if !reading.contains("\"ready\":true") { ready = false }
                    entries.append("{\(labels),\"health\":\(reading)}")
                }
                let body = "{\"live\":true,\"ready\":\(ready),\"workers\":[\(entries.joined(separator: ","))]}\n"
                return HTTPReply(status: path == "/readyz" && !ready ? .serviceUnavailable : .ok, contentType: "application/json", body: body)
            }
        default:
            return loop.makeSucceededFuture(.notFound(path, known: ["/metrics", "/healthz", "/readyz"]))
        }
    }

    /// The body of a GET of `url`, or nil when it failed or took longer than the scrape timeout.
    private func fetch(_ url: String, on loop: EventLoop) -> EventLoopFuture<String?> {
        guard let request = try? HTTPClient.Request(url: url) else { return loop.makeSucceededFuture(nil) }
        let deadline = NIODeadline.now() + .nanoseconds(Int64(scrapeTimeout / .nanoseconds(1)))
        let failures = self.failures
        return HTTPClient.shared.execute(request: request, deadline: deadline)
            .hop(to: loop)
            .map { response -> String? in
                guard response.status == .ok else { failures.increment(); return nil }
                return response.body.map { String(buffer: $0) } ?? ""
            }
            .recover { _ in
                failures.increment()
                return nil
            }
    }

    /// Stops serving.
    public func close() { endpoint.close() }
}
