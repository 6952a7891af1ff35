import Foundation

/// A plain HTTP/1.0 GET over a loopback socket, for tests that read endpoints (metrics,
/// Prometheus' API) without the library's own HTTP code in the way.
public enum HTTPGet {
    /// The answer: status code and body.
    public struct Reply: Sendable {
        /// The HTTP status code.
        public let status: Int
        /// The body as text.
        public let body: String
    }

    /// GETs `path` (with its query, already percent-encoded) from `host:port`; nil when nothing
    /// answered within `timeout`.
    public static func fetch(host: String = "127.0.0.1", port: UInt16, path: String, timeout: Duration = .seconds(5)) -> Reply? {
        guard let fd = IPv4Socket.connect(to: host, port: port) else { return nil }
        defer { close(fd) }
        let seconds = max(1, Int(timeout / .seconds(1)))
        var limit = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        let request = Array("GET \(path) HTTP/1.0\r\nHost: \(host):\(port)\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else { return nil }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0, errno == EINTR { continue }
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { return nil }
        let statusLine = text[..<split.lowerBound].split(separator: "\r\n").first ?? ""
        guard let status = statusLine.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return nil }
        return Reply(status: status, body: String(text[split.upperBound...]))
    }

    /// `text` percent-encoded for a query parameter.
    public static func encode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
