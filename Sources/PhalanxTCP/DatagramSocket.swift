#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A bound, non-blocking UDP socket (IPv4): what the elastic layer's heartbeats travel on.
/// Sending and receiving may happen on different threads; `close` may come from any thread.
public final class DatagramSocket: Sendable {
    /// A resolved destination.
    public struct Destination: Sendable {
        let address: sockaddr_in
    }

    private let handle: Atomic<Int32>
    /// "host:port" it is bound to, for messages.
    public let endpoint: String

    /// Binds `host:port` (port 0: any free port).
    /// - Throws: `SocketError` when the socket cannot be made or bound.
    public init(host: String, port: UInt16) throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw SocketError("socket(UDP)", endpoint: "\(host):\(port)", errno: errno) }
        var address = try Socket.resolve(host, port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            let code = errno
            Glibc.close(fd)
            throw SocketError("bind(UDP)", endpoint: "\(host):\(port)", errno: code)
        }
        handle = Atomic(fd)
        endpoint = "\(host):\(port)"
    }

    deinit { close() }

    /// Closes the socket (once, whichever thread comes first).
    public func close() {
        let old = handle.exchange(-1, ordering: .acquiringAndReleasing)
        if old >= 0 { _ = Glibc.close(old) }
    }

    /// Resolves `host:port` once, for repeated sends.
    /// - Throws: `SocketError` when the host does not resolve.
    public static func destination(host: String, port: UInt16) throws -> Destination {
        Destination(address: try Socket.resolve(host, port: port))
    }

    /// Sends one datagram without waiting (a full buffer drops it, as the network may).
    public func send(_ bytes: [UInt8], to destination: Destination) {
        var target = destination.address
        let fd = handle.load(ordering: .acquiring)
        guard fd >= 0 else { return }
        _ = bytes.withUnsafeBytes { raw in
            withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, raw.baseAddress, raw.count, Int32(MSG_DONTWAIT), $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
    }

    /// Waits up to `milliseconds` for a datagram to arrive; true when one is waiting.
    public func waitReadable(milliseconds: Int32) -> Bool {
        var entry = pollfd(fd: handle.load(ordering: .acquiring), events: Int16(POLLIN), revents: 0)
        guard entry.fd >= 0 else { return false }
        return poll(&entry, 1, max(1, milliseconds)) > 0
    }

    /// The next waiting datagram (at most `maximum` bytes), or nil when none is waiting.
    public func receive(maximum: Int = 256) -> [UInt8]? {
        let fd = handle.load(ordering: .acquiring)
        guard fd >= 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: maximum)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        return n > 0 ? Array(buffer[0..<n]) : nil
    }
}
