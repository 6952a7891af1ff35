import Foundation

/// Unauthenticated TCP connections held open against a listener: some silent (they connect
/// and say nothing), some sending garbage, as a port scanner, a misconfigured client or an
/// attacker would. For tests of what a flood of strangers does to a job.
public final class ConnectionFlood: @unchecked Sendable {
    // Guarded by `lock`: the open connections and the count of those that failed.
    private let lock = NSLock()
    private var descriptors: [Int32] = []
    private var failures = 0

    /// Connections that could not be opened (refused, or reset at once).
    public var failedToConnect: Int {
        lock.lock()
        defer { lock.unlock() }
        return failures
    }

    /// Opens nothing yet.
    public init() {}

    deinit { close() }

    /// Opens `silent` silent and `garbage` garbage connections to `host:port` (IPv4), one
    /// after another; a garbage connection sends 64 random bytes right after connecting.
    public func open(host: String, port: UInt16, silent: Int, garbage: Int) {
        var generator = SystemRandomNumberGenerator()
        for index in 0..<(silent + garbage) {
            guard let fd = IPv4Socket.connect(to: host, port: port) else {
                lock.lock()
                failures += 1
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
