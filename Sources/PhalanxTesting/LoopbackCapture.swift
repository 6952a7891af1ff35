import Foundation

/// Records the UDP datagrams and TCP segments that cross the loopback interface, as tcpdump
/// would: what an attacker on the path captures to replay later. Needs root (a packet socket).
public final class LoopbackCapture: @unchecked Sendable {
    /// One captured UDP datagram or TCP segment (with a payload).
    public struct Datagram: Sendable {
        /// Whether it is a TCP segment (else a UDP datagram).
        public let isTCP: Bool
        /// The sender's port.
        public let sourcePort: UInt16
        /// The receiver's port.
        public let destinationPort: UInt16
        /// The payload.
        public let payload: [UInt8]
    }

    private let descriptor: Int32
    private let keep: @Sendable (Datagram) -> Bool
    // Guarded by `lock`: what was captured, and whether the capture thread should stop.
    private let lock = NSLock()
    private var captured: [Datagram] = []
    private var stopped = false
    private let finished = DispatchSemaphore(value: 0)

    /// Starts capturing the datagrams and segments `keep` accepts.
    /// - Throws: `POSIXError` when no packet socket can be opened (not root).
    public init(keep: @escaping @Sendable (Datagram) -> Bool) throws {
        // AF_PACKET (17) with SOCK_DGRAM: IP packets without the link-layer header; 0x0800 = IPv4.
        let fd = socket(17, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Int32(UInt16(0x0800).bigEndian))
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EPERM) }
        // sockaddr_ll: family(2) protocol(2) ifindex(4) hatype(2) pkttype(1) halen(1) addr(8).
        var address = [UInt8](repeating: 0, count: 20)
        address[0] = 17
        address[2] = 0x08
        let index = Int32(if_nametoindex("lo"))
        withUnsafeBytes(of: index) { for (offset, byte) in $0.enumerated() { address[4 + offset] = byte } }
        let bound = address.withUnsafeBytes { bind(fd, $0.baseAddress?.assumingMemoryBound(to: sockaddr.self), 20) }
        guard bound == 0 else {
            let code = errno
            close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)
        }
        descriptor = fd
        self.keep = keep
        Thread { [self] in loop() }.start()
    }

    deinit { stop() }

    /// Whether this process may open a packet socket (root, or CAP_NET_RAW).
    public static var isAvailable: Bool {
        let fd = socket(17, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Int32(UInt16(0x0800).bigEndian))
        guard fd >= 0 else { return false }
        close(fd)
        return true
    }

    private func loop() {
        defer { finished.signal() }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var from = [UInt8](repeating: 0, count: 20)
        while true {
            lock.lock()
            let done = stopped
            lock.unlock()
            if done { return }
            var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 100) > 0 else { continue }
            var length = socklen_t(20)
            let n = buffer.withUnsafeMutableBytes { data in
                from.withUnsafeMutableBytes { recvfrom(descriptor, data.baseAddress, data.count, 0, $0.baseAddress?.assumingMemoryBound(to: sockaddr.self), &length) }
            }
            // Each loopback packet is seen leaving (pkttype 4, PACKET_OUTGOING) and arriving: keep one.
            guard n > 28, from[10] != 4, buffer[9] == 17 || buffer[9] == 6 else { continue }
            let at = Int(buffer[0] & 0x0F) * 4
            let isTCP = buffer[9] == 6
            guard n >= at + (isTCP ? 20 : 8) else { continue }
            let payloadAt = at + (isTCP ? Int(buffer[at + 12] >> 4) * 4 : 8)
            guard payloadAt < n else { continue }
            let datagram = Datagram(isTCP: isTCP, sourcePort: UInt16(buffer[at]) << 8 | UInt16(buffer[at + 1]),
                                    destinationPort: UInt16(buffer[at + 2]) << 8 | UInt16(buffer[at + 3]), payload: Array(buffer[payloadAt..<n]))
            guard keep(datagram) else { continue }
            lock.lock()
            captured.append(datagram)
            lock.unlock()
        }
    }

    /// What was captured so far.
    public var datagrams: [Datagram] {
        lock.lock()
        defer { lock.unlock() }
        return captured
    }

    /// Stops capturing (within 100 ms) and closes the socket.
    public func stop() {
        lock.lock()
        let first = !stopped
        stopped = true
        lock.unlock()
        guard first else { return }
        finished.wait()
        close(descriptor)
    }

    /// Sends `payload` to 127.0.0.1:`port` from a fresh UDP socket, as a replay.
    public static func send(_ payload: [UInt8], toPort port: UInt16) {
        guard let fd = IPv4Socket.make(SOCK_DGRAM) else { return }
        defer { close(fd) }
        var address = IPv4Socket.address("127.0.0.1", port: port)
        _ = payload.withUnsafeBytes { bytes in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
    }
    /// Opens a TCP connection to 127.0.0.1:`port`, sends `bytes` once the other side has said
    /// `waitFor` bytes first (a handshake's opening), and returns everything the other side sent
    /// until it closed the connection or 2 s passed.
    public static func replayStream(_ bytes: [UInt8], toPort port: UInt16, after waitFor: Int) -> [UInt8] {
        guard let fd = IPv4Socket.connect(to: "127.0.0.1", port: port) else { return [] }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var sent = false
        let deadline = ContinuousClock.now + .seconds(2)
        while ContinuousClock.now < deadline {
            if !sent, received.count >= waitFor {
                _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                sent = true
            }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            received += buffer[0..<n]
        }
        return received
    }
}
