import Foundation

/// Unauthenticated TCP connections held open against a listener: some silent (they connect
/// and say nothing), some sending garbage, as a port scanner, a misconfigured client or an
/// attacker would. For tests of what a flood of strangers does to a job.
public final class ConnectionFlood: @unchecked Sendable {
    private let lock = NSLock()
    private var descriptors: [Int32] = []
    /// Connections that could not be opened (refused, or reset at once).
    public private(set) var failedToConnect = 0

    /// Opens nothing yet.
    public init() {}

    deinit { close() }

    /// Opens `silent` silent and `garbage` garbage connections to `host:port` (IPv4), one
    /// after another; a garbage connection sends 64 random bytes right after connecting.
    public func open(host: String, port: UInt16, silent: Int, garbage: Int) {
        var generator = SystemRandomNumberGenerator()
        for index in 0..<(silent + garbage) {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { continue }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = inet_addr(host)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else {
                Glibc.close(fd)
                lock.lock()
                failedToConnect += 1
                lock.unlock()
                continue
            }
            if index >= silent {
                let bytes = (0..<64).map { _ in UInt8.random(in: 0...255, using: &generator) }
                _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            }
            lock.lock()
            descriptors.append(fd)
            lock.unlock()
        }
    }

    /// Connections opened and still held.
    public var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return descriptors.count
    }

    /// Closes every connection.
    public func close() {
        lock.lock()
        let open = descriptors
        descriptors = []
        lock.unlock()
        for fd in open { Glibc.close(fd) }
    }
}
