import Foundation

/// Plain IPv4 sockets for the testing helpers that play strangers, relays and attackers
/// (they must not use the library's own sockets, which would authenticate).
enum IPv4Socket {
    /// `host:port` as a socket address (`port` 0: any).
    static func address(_ host: String, port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr(host)
        return address
    }

    /// A new socket of `type` (SOCK_STREAM or SOCK_DGRAM); nil when none can be made.
    static func make(_ type: __socket_type) -> Int32? {
        let fd = socket(AF_INET, Int32(type.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        return fd >= 0 ? fd : nil
    }

    /// A TCP connection to `host:port`; nil (and nothing left open) when it is refused.
    static func connect(to host: String, port: UInt16) -> Int32? {
        guard let fd = make(SOCK_STREAM) else { return nil }
        var target = address(host, port: port)
        let connected = withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    /// Binds `fd` to a free port of 127.0.0.1 and returns the port.
    /// - Throws: `POSIXError` when it cannot be bound or named.
    static func bindLoopback(_ fd: Int32) throws -> UInt16 {
        var local = address("127.0.0.1", port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        let named = withUnsafeMutablePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        guard bound == 0, named == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        return UInt16(bigEndian: local.sin_port)
    }
}
