#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// An owned TCP socket (IPv4) with deadline-bounded blocking helpers. Closed on deinit.
/// Any thread may close it (an abort, a shutdown) while another uses it: the descriptor is
/// atomic, and closing swaps it for -1 before the close, exactly once.
final class Socket: Sendable {
    private let handle: Atomic<Int32>
    private let keys = Mutex<SessionKeys?>(nil)
    /// "host:port" of the other end (or of the listening address), for messages.
    let endpoint: String

    /// The connection's keys, set once the handshake succeeded (nil before).
    var session: SessionKeys? {
        get { keys.withLock { $0 } }
        set { keys.withLock { $0 = newValue } }
    }

    /// The file descriptor (-1 once closed).
    var descriptor: Int32 { handle.load(ordering: .acquiring) }

    private init(descriptor: Int32, endpoint: String) {
        self.handle = Atomic(descriptor)
        self.endpoint = endpoint
    }

    deinit { close() }

    func close() {
        let old = handle.exchange(-1, ordering: .acquiringAndReleasing)
        if old >= 0 { _ = Glibc.close(old) }
    }

    /// Whether the other end has closed the connection (or it failed): a readable socket
    /// with nothing to read. Never blocks; data waiting to be read means it is open.
    func peerClosed() -> Bool {
        let fd = descriptor
        guard fd >= 0 else { return true }
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, 0) > 0 else { return false }
        if entry.revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 { return true }
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) == 0
    }

    /// Stops both directions; a blocked peer read returns end-of-file.
    func shutdown() { if descriptor >= 0 { _ = Glibc.shutdown(descriptor, Int32(SHUT_RDWR)) } }

    /// Stops sending; the peer reads end-of-file after what was sent.
    func shutdownWrite() { if descriptor >= 0 { _ = Glibc.shutdown(descriptor, Int32(SHUT_WR)) } }

    // MARK: Creation

    static func resolve(_ host: String, port: UInt16) throws -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        if inet_pton(AF_INET, host, &address.sin_addr) == 1 { return address }
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &result)
        defer { if let result { freeaddrinfo(result) } }
        guard status == 0, let info = result, let raw = info.pointee.ai_addr else {
            throw SocketError("resolve", endpoint: host, reason: status == 0 ? "no IPv4 address" : String(cString: gai_strerror(status)))
        }
        raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { address.sin_addr = $0.pointee.sin_addr }
        return address
    }

    private static func makeDescriptor(_ endpoint: String, _ operation: String) throws -> Int32 {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError(operation, endpoint: endpoint, errno: errno) }
        return fd
    }

    /// Listens on `host:port` (port 0: the kernel picks one; see `localPort`).
    static func listen(host: String, port: UInt16, backlog: Int32 = 128) throws -> Socket {
        let endpoint = "\(host):\(port)"
        var address = try resolve(host, port: port)
        let fd = try makeDescriptor(endpoint, "listen")
        let socket = Socket(descriptor: fd, endpoint: endpoint)
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw SocketError("bind", endpoint: endpoint, errno: errno) }
        guard Glibc.listen(fd, backlog) == 0 else { throw SocketError("listen", endpoint: endpoint, errno: errno) }
        try socket.setNonBlocking()
        return socket
    }

    /// Connects to `host:port`, retrying refused connections until `deadline` (the peer may not
    /// be listening yet).
    /// Connects before `deadline`. A refused connection is retried (the peer may not listen yet)
    /// unless `retryRefused` is false, for peers that must already be there.
    static func connect(host: String, port: UInt16, deadline: Deadline, retryRefused: Bool = true) throws -> Socket {
        let endpoint = "\(host):\(port)"
        var address = try resolve(host, port: port)
        var lastError = SocketError("connect", endpoint: endpoint, reason: "timed out before the first attempt")
        var backoff = Backoff(cap: .milliseconds(100))
        repeat {
            let fd = try makeDescriptor(endpoint, "connect")
            let socket = Socket(descriptor: fd, endpoint: endpoint)
            try socket.setNonBlocking()
            let status = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if status == 0 { return socket }
            if errno == EINPROGRESS {
                if try socket.wait(for: Int16(POLLOUT), deadline: deadline) {
                    var error: Int32 = 0
                    var length = socklen_t(MemoryLayout<Int32>.size)
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
                    if error == 0 { return socket }
                    lastError = SocketError("connect", endpoint: endpoint, errno: error)
                } else {
                    lastError = SocketError("connect", endpoint: endpoint, reason: "timed out")
                }
            } else {
                lastError = SocketError("connect", endpoint: endpoint, errno: errno)
            }
            socket.close()
            guard retryRefused, lastError.errno == ECONNREFUSED || lastError.errno == ECONNRESET || lastError.errno == ETIMEDOUT else { throw lastError }
            if deadline.hasPassed { break }
            backoff.sleep(before: deadline)
        } while !deadline.hasPassed
        throw SocketError("connect", endpoint: endpoint, errno: lastError.errno, reason: "timed out (last error: \(lastError.reason))")
    }

    /// Accepts one connection, or nil when `deadline` passes first.
    func accept(deadline: Deadline) throws -> Socket? {
        while true {
            var address = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let fd = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.accept(descriptor, $0, &length) }
            }
            if fd >= 0 {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                let accepted = Socket(descriptor: fd, endpoint: Socket.describe(address))
                try accepted.setNonBlocking()
                return accepted
            }
            guard errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED else {
                throw SocketError("accept", endpoint: endpoint, errno: errno)
            }
            if try !wait(for: Int16(POLLIN), deadline: deadline) { return nil }
        }
    }

    static func describe(_ address: sockaddr_in) -> String {
        var copy = address.sin_addr
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        inet_ntop(AF_INET, &copy, &text, socklen_t(INET_ADDRSTRLEN))
        let host = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return "\(host):\(UInt16(bigEndian: address.sin_port))"
    }

    // MARK: Options

    func setNonBlocking() throws {
        let flags = fcntl(descriptor, F_GETFL, 0)
        guard flags >= 0, fcntl(descriptor, F_SETFL, flags | O_NONBLOCK) == 0 else {
            throw SocketError("fcntl(O_NONBLOCK)", endpoint: endpoint, errno: errno)
        }
    }

    /// TCP_NODELAY: small control messages leave at once instead of waiting for the peer's
    /// delayed acknowledgement (up to 40 ms on Linux).
    func setNoDelay() {
        var one: Int32 = 1
        _ = setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Tunes a ring data connection: TCP_NODELAY, large kernel buffers, and a congestion
    /// control suited to short fast paths (`DataConnectionTuning`).
    func configureForData(_ tuning: DataConnectionTuning = .current) {
        tuning.apply(to: descriptor)
    }

    /// The local port (after `listen` on port 0).
    var localPort: UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) } }
        return UInt16(bigEndian: address.sin_port)
    }

    /// The local IPv4 address of a connected socket (the interface that reaches the peer).
    var localHost: String {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) } }
        let text = Socket.describe(address)
        return String(text[..<(text.lastIndex(of: ":") ?? text.endIndex)])
    }

    // MARK: Blocking helpers with deadlines

    /// Waits until the socket is ready for `events`; false when the deadline passed.
    func wait(for events: Int16, deadline: Deadline) throws -> Bool {
        while true {
            var entry = pollfd(fd: descriptor, events: events, revents: 0)
            let ready = poll(&entry, 1, deadline.pollMilliseconds)
            if ready > 0 { return true }
            if ready == 0 { return false }
            if errno != EINTR { throw SocketError("poll", endpoint: endpoint, errno: errno) }
        }
    }

    /// Writes all of `bytes` before `deadline`.
    func writeAll(_ bytes: [UInt8], deadline: Deadline) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { send(descriptor, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if n > 0 { sent += n; continue }
            if n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
                throw SocketError("send", endpoint: endpoint, errno: errno)
            }
            if try !wait(for: Int16(POLLOUT), deadline: deadline) {
                throw SocketError("send", endpoint: endpoint, reason: "timed out")
            }
        }
    }

    /// Reads exactly `count` bytes before `deadline`.
    func readExactly(_ count: Int, deadline: Deadline) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var received = 0
        while received < count {
            let n = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress! + received, count - received, 0) }
            if n > 0 { received += n; continue }
            if n == 0 { throw SocketError("recv", endpoint: endpoint, reason: "connection closed by peer") }
            if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
                throw SocketError("recv", endpoint: endpoint, errno: errno)
            }
            if try !wait(for: Int16(POLLIN), deadline: deadline) {
                throw SocketError("recv", endpoint: endpoint, reason: "timed out")
            }
        }
        return buffer
    }
}
