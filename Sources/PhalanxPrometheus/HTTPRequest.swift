import NIOHTTP1

/// What a metrics endpoint's route sees of a GET: the path (without the query) and the
/// headers (Prometheus says how long it waits in `X-Prometheus-Scrape-Timeout-Seconds`).
public struct HTTPRequest: Sendable {
    /// The path, e.g. `/metrics`.
    public var path: String
    /// The request's headers.
    public var headers: HTTPHeaders

    /// A request for `path` with `headers`.
    public init(path: String, headers: HTTPHeaders = [:]) {
        self.path = path
        self.headers = headers
    }

    /// The scrape timeout Prometheus announced, if any.
    public var scrapeTimeout: Duration? {
        guard let text = headers.first(name: "X-Prometheus-Scrape-Timeout-Seconds"), let seconds = Double(text), seconds > 0, seconds < 1e6 else { return nil }
        return .milliseconds(Int64(seconds * 1000))
    }
}
