/// Why a request to etcd failed.
public enum EtcdError: Error, CustomStringConvertible, Sendable, Equatable {
    /// No endpoint answered within the deadline (each was tried once).
    case unreachable(endpoints: [String], lastError: String)
    /// An endpoint answered with an HTTP error or something that is not an etcd answer.
    case badAnswer(endpoint: String, detail: String)
    /// An endpoint is not `host:port` or `http://host:port`.
    case invalidEndpoint(String)

    /// A one-line explanation.
    public var description: String {
        switch self {
        case let .unreachable(endpoints, lastError):
            return "no etcd endpoint answered (\(endpoints.joined(separator: ", "))): \(lastError)"
        case let .badAnswer(endpoint, detail): return "etcd at \(endpoint) answered something unexpected: \(detail)"
        case let .invalidEndpoint(text): return "'\(text)' is not an etcd endpoint (host:port or http://host:port)"
        }
    }
}
