#if canImport(Glibc)
import Glibc
#endif

/// A failed socket call: what was attempted, with whom, and the OS error.
public struct SocketError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The attempted operation, e.g. "connect".
    public var operation: String
    /// The remote (or local) endpoint, e.g. "127.0.0.1:4000".
    public var endpoint: String
    /// `errno`, or 0 when the failure was not an OS error (a timeout, a closed connection).
    public var errno: Int32
    /// What happened, in words.
    public var reason: String

    init(_ operation: String, endpoint: String, errno code: Int32 = 0, reason: String? = nil) {
        self.operation = operation
        self.endpoint = endpoint
        self.errno = code
        self.reason = reason ?? (code == 0 ? "failed" : String(cString: strerror(code)))
    }

    /// True when the peer closed or reset the connection.
    public var isConnectionLost: Bool {
        errno == ECONNRESET || errno == EPIPE || errno == ENOTCONN || reason == "connection closed by peer"
    }

    /// True when a deadline passed.
    public var isTimeout: Bool { reason.hasPrefix("timed out") }

    /// "connect 127.0.0.1:4000: Connection refused".
    public var description: String { "\(operation) \(endpoint): \(reason)" }
}
