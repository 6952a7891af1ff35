import AsyncHTTPClient
import CoreMetrics
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Prometheus

/// `MetricsAggregator`'s work: the workers to scrape, and the replies built from their answers.
public final class WorkerScraper: Sendable {
    /// A worker being scraped.
    public struct Target: Sendable, Equatable {
        /// Where its endpoint is (`http://host:port`).
        public var base: String
        /// The labels its samples get (`member`, `node`).
        public var labels: [String: String]
    }

    private let registry: PrometheusCollectorRegistry
    private let scrapeTimeout: Duration
    private let targets = NIOLockedValueBox<[String: Target]>([:])
    private let failures: CoreMetrics.Counter

    init(registry: PrometheusCollectorRegistry, scrapeTimeout: Duration) {
        self.registry = registry
        self.scrapeTimeout = scrapeTimeout
        failures = CoreMetrics.Counter(label: "phalanx_launcher_scrape_failures_total", factory: PrometheusExport.factory(registry: registry))
    }

    func register(_ key: String, base: String, labels: [String: String]) {
        targets.withLockedValue { $0[key] = Target(base: base, labels: labels) }
    }

    func remove(_ key: String) {
        _ = targets.withLockedValue { $0.removeValue(forKey: key) }
    }

    var registered: [String: Target] { targets.withLockedValue { $0 } }

    func reply(to request: HTTPRequest, on loop: EventLoop) -> EventLoopFuture<HTTPReply> {
        let current = registered.sorted { $0.key.localizedStandardCompare($1.key) == .orderedAscending }.map(\.value)
        // Leave Prometheus a fifth of its timeout (at least 100 ms) to take the answer.
        var timeout = scrapeTimeout
        if let announced = request.scrapeTimeout { timeout = min(timeout, max(announced * 0.8, announced - .milliseconds(100))) }
        switch request.path {
        case "/metrics":
            let scrapes = current.map { target in
                fetch(target.base + "/metrics", within: timeout, counted: true, on: loop).map { text in
                    text.map { ExpositionText(parsing: $0).labelled(target.labels.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }) }
                }
            }
            return EventLoopFuture.whenAllSucceed(scrapes, on: loop).map { [registry] parts in
                let own = ExpositionText(parsing: PrometheusExport.text(of: registry))
                return HTTPReply(contentType: HTTPReply.exposition, body: ExpositionText.merged([own] + parts.compactMap { $0 }).text)
            }
        case "/healthz", "/readyz":
            let readings = current.map { target in fetch(target.base + "/healthz", within: timeout, counted: false, on: loop).map { (target, $0) } }
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
                return HTTPReply(status: request.path == "/readyz" && !ready ? .serviceUnavailable : .ok, contentType: "application/json", body: body)
            }
        default:
            return loop.makeSucceededFuture(.notFound(request.path, known: ["/metrics", "/healthz", "/readyz"]))
        }
    }

    /// The body of a GET of `url`, or nil when it failed or took longer than `timeout`
    /// (counted in `phalanx_launcher_scrape_failures_total` when `counted`).
    private func fetch(_ url: String, within timeout: Duration, counted: Bool, on loop: EventLoop) -> EventLoopFuture<String?> {
        guard let request = try? HTTPClient.Request(url: url) else { return loop.makeSucceededFuture(nil) }
        let deadline = NIODeadline.now() + .nanoseconds(Int64(timeout / .nanoseconds(1)))
        let failures = self.failures
        return HTTPClient.shared.execute(request: request, deadline: deadline)
            .hop(to: loop)
            .map { response -> String? in
                guard response.status == .ok else {
                    if counted { failures.increment() }
                    return nil
                }
                return response.body.map { String(buffer: $0) } ?? ""
            }
            .recover { _ in
                if counted { failures.increment() }
                return nil
            }
    }
}
