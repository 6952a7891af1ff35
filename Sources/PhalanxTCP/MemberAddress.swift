import Foundation

/// Where an elastic member listens: its id (stable for the member's life, never reused) and
/// the host and port of its TCP listener; its heartbeat UDP socket uses the same port number.
public struct MemberAddress: Codable, Sendable, Hashable, CustomStringConvertible {
    /// The member id: the launch rank for initial members, assigned at admission for joiners.
    public var id: Int
    /// An IPv4 address or host name.
    public var host: String
    /// The TCP (and UDP) port.
    public var port: UInt16

    /// Makes an address.
    public init(id: Int, host: String, port: UInt16) {
        self.id = id
        self.host = host
        self.port = port
    }

    /// Reads "host:port" (spaces around it ignored) as the address of member `id`: nil unless
    /// it is a non-empty host, one colon and a port number.
    public init?(id: Int, parsing text: String) {
        let parts = text.trimmingCharacters(in: .whitespaces).split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, let port = UInt16(parts[1]) else { return nil }
        self.init(id: id, host: String(parts[0]), port: port)
    }

    /// "member 3 (127.0.0.1:40123)".
    public var description: String { "member \(id) (\(host):\(port))" }
}
