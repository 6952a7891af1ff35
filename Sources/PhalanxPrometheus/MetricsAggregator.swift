import Foundation
import NIOCore
import Prometheus

/// One endpoint for all the workers of a launcher (phalanx-run, a node agent): `/metrics`
/// scrapes every registered worker, adds its `member` and `node` labels, and serves their
/// families merged with the launcher's own; `/healthz` lists every worker's health reading;
/// `/readyz` is 200 when every worker is ready.
///
/// Each worker's scrape gets the launcher's `scrapeTimeout`, or less when Prometheus announced
/// a shorter one. A worker that does not answer in time is left out of that scrape (and counted
/// in `phalanx_launcher_scrape_failures_total`): a hung worker does not fail the whole scrape.
public final class MetricsAggregator: Sendable {
    /// The endpoint.
    public let endpoint: MetricsEndpoint
    /// The launcher's own registry (served with the workers').
    public let registry: PrometheusCollectorRegistry
    private let scraper: WorkerScraper

    /// Serves on `host`:`port` (0: any free port).
    /// - Throws: when the address cannot be bound.
    public init(host: String, port: Int, registry: PrometheusCollectorRegistry, scrapeTimeout: Duration = .seconds(2)) throws {
        self.registry = registry
        let scraper = WorkerScraper(registry: registry, scrapeTimeout: scrapeTimeout)
        self.scraper = scraper
        endpoint = try MetricsEndpoint(host: host, port: port) { request, loop in scraper.reply(to: request, on: loop) }
    }

    /// Scrapes worker `key` at `base` (`http://host:port`) from now on, labelling its samples
    /// with `labels` (a worker announcing itself again replaces its earlier entry).
    public func register(_ key: String, base: String, labels: [String: String]) { scraper.register(key, base: base, labels: labels) }

    /// Stops scraping worker `key` (it ended).
    public func remove(_ key: String) { scraper.remove(key) }

    /// The workers scraped now, by key.
    public var registered: [String: WorkerScraper.Target] { scraper.registered }

    /// Stops serving.
    public func close() { endpoint.close() }
}
