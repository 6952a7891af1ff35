import Foundation

/// A real Prometheus (Debian's `prometheus` package) for tests: its configuration and storage
/// in a scratch directory, listening on a loopback port, stopped by PID.
public final class PrometheusServer {
    /// The executable where Debian puts it.
    public static let executable = "/usr/bin/prometheus"
    /// Where its HTTP API listens.
    public let port: UInt16
    private let directory: String
    private var process: WorkerProcesses?

    /// Whether Prometheus is installed.
    public static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: executable) }

    /// Starts Prometheus with `configuration` (YAML; rule files named by absolute path) and
    /// returns once it answers `/-/ready`, within `timeout`.
    /// - Throws: `Failure` when it is missing or not ready in time (with its log).
    public init(configuration: String, timeout: Duration = .seconds(30)) throws {
        guard Self.isInstalled else { throw Failure(description: "\(Self.executable) is missing (apt-get install prometheus)") }
        port = try LoopbackPort.free()
        directory = NSTemporaryDirectory() + "phalanx-prometheus-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try configuration.write(toFile: "\(directory)/prometheus.yml", atomically: true, encoding: .utf8)
        process = try WorkerProcesses(
            executable: Self.executable,
            arguments: [
                "--config.file=\(directory)/prometheus.yml", "--storage.tsdb.path=\(directory)/data",
                "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn",
            ],
            count: 1) { _ in [:] }
        let deadline = ContinuousClock.now + timeout
        while HTTPGet.fetch(port: port, path: "/-/ready", timeout: .seconds(2))?.status != 200 {
            guard ContinuousClock.now < deadline, process?.processes.first?.isRunning == true else {
                let log = process?.stderrSoFar(0).suffix(2000) ?? ""
                stop()
                throw Failure(description: "Prometheus did not become ready within \(timeout): \(log)")
            }
            usleep(200_000)
        }
    }

    /// The `data` of an API call (`/api/v1/…`), parsed; nil when it failed.
    public func api(_ path: String) -> Any? {
        guard let reply = HTTPGet.fetch(port: port, path: path), reply.status == 200,
              let object = try? JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [String: Any],
              object["status"] as? String == "success" else { return nil }
        return object["data"]
    }

    /// The value of an instant query's first sample; nil when the result is empty.
    public func value(_ query: String) -> Double? {
        guard let data = api("/api/v1/query?query=\(HTTPGet.encode(query))") as? [String: Any],
              let first = (data["result"] as? [[String: Any]])?.first,
              let pair = first["value"] as? [Any], pair.count == 2, let text = pair[1] as? String else { return nil }
        return Double(text)
    }

    /// The alerts in `state` ("firing", "pending"), by name.
    public func alerts(state: String = "firing") -> [String] {
        guard let data = api("/api/v1/alerts") as? [String: Any], let alerts = data["alerts"] as? [[String: Any]] else { return [] }
        return alerts.filter { $0["state"] as? String == state }.compactMap { ($0["labels"] as? [String: Any])?["alertname"] as? String }
    }

    /// When its rule groups were last evaluated (the earliest of the groups); nil before any.
    public func lastRuleEvaluation() -> Date? {
        guard let data = api("/api/v1/rules") as? [String: Any], let groups = data["groups"] as? [[String: Any]], !groups.isEmpty else { return nil }
        let parser = ISO8601DateFormatter()
        parser.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let times = groups.map { ($0["lastEvaluation"] as? String).flatMap { parser.date(from: $0) } }
        guard times.allSatisfy({ $0 != nil }) else { return nil }
        return times.compactMap { $0 }.min()
    }

    /// Every metric name Prometheus has stored.
    public func metricNames() -> [String] { api("/api/v1/label/__name__/values") as? [String] ?? [] }

    /// Its log so far (stderr).
    public var log: String { process?.stderrSoFar(0) ?? "" }

    /// SIGTERMs it (SIGKILL by PID after 10 s) and removes its directory.
    public func stop() {
        if let process {
            if process.processes.first?.isRunning == true { process.signal(0, SIGTERM) }
            _ = process.wait(timeout: .seconds(10))
        }
        process = nil
        try? FileManager.default.removeItem(atPath: directory)
    }

    deinit { stop() }

    /// Prometheus could not be started.
    public struct Failure: Error, CustomStringConvertible {
        /// What went wrong.
        public let description: String
    }
}
