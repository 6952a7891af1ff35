import Foundation

/// A man in the middle for one TCP connection: accepts it on a port of its own, connects
/// onward to the real destination and copies bytes both ways, changing what the connector sends
/// as told. For tests of what a job does when its traffic is changed or replayed on the way.
public final class TamperingRelay: @unchecked Sendable {
    /// What to do to the connector → acceptor stream.
    public enum Tampering: Sendable {
        /// Pass everything unchanged.
        case none
        /// XOR the byte at `offset` of the stream with 0x01.
        case flipBit(offset: Int)
        /// Send the Phalanx frame that starts at stream offset `at` a second time, right after
        /// itself; `bodyBytes` gives the bytes after a frame's 48-byte header for the payload size
        /// its header names.
        case repeatFrame(at: Int, bodyBytes: @Sendable (Int) -> Int)
    }

    /// The port connectors should use instead of the destination's.
    public let port: UInt16
    private let listener: Int32
    private let destination: UInt16
    private let tampering: Tampering
    // Guarded by `lock`: whether the listener was stopped (the pumps' state is local to their
    // threads).
    private let lock = NSLock()
    private var stopped = false

    /// Listens on 127.0.0.1 for one connection to relay to 127.0.0.1:`destination`.
    /// - Throws: `POSIXError` when no port can be bound.
    public init(to destination: UInt16, tampering: Tampering) throws {
        guard let fd = IPv4Socket.make(SOCK_STREAM) else { throw POSIXError(.EIO) }
        do {
            port = try IPv4Socket.bindLoopback(fd)
            guard listen(fd, 4) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        } catch {
            close(fd)
            throw error
        }
        listener = fd
        self.destination = destination
        self.tampering = tampering
        Thread { [self] in relay() }.start()
    }

    deinit { stop() }

    /// Closes the listener (a connection being relayed ends when either side closes).
    public func stop() {
        lock.lock()
        let first = !stopped
        stopped = true
        lock.unlock()
        if first { shutdown(listener, Int32(SHUT_RDWR)); close(listener) }
    }

    private func relay() {
        let inbound = accept(listener, nil, nil)
        guard inbound >= 0 else { return }
        guard let outbound = IPv4Socket.connect(to: "127.0.0.1", port: destination) else {
            close(inbound)
            return
        }
        let done = DispatchGroup()
        done.enter()
        Thread { [self] in
            pump(from: outbound, to: inbound, tamper: false)
            done.leave()
        }.start()
        pump(from: inbound, to: outbound, tamper: true)
        done.wait()
        close(inbound)
        close(outbound)
    }

    /// The bytes to pass on for the stream seen so far (`history`), of which `emitted` were
    /// passed on already: everything before the frame at `at`, and the frame twice once whole.
    private static func frameTwice(_ history: [UInt8], emitted: inout Int, at: Int, bodyBytes: (Int) -> Int) -> (out: [UInt8], done: Bool) {
        guard history.count >= at + 48 else {
            let upTo = min(history.count, at)
            defer { emitted = max(emitted, upTo) }
            return (emitted < upTo ? Array(history[emitted..<upTo]) : [], false)
        }
        let payload = (40..<48).reduce(0) { $0 << 8 | Int(history[at + $1]) }
        let end = at + 48 + bodyBytes(payload)
        guard history.count >= end else {
            defer { emitted = max(emitted, at) }
            return (emitted < at ? Array(history[emitted..<at]) : [], false)
        }
        defer { emitted = history.count }
        return (Array(history[emitted..<end]) + Array(history[at..<end]) + Array(history[end...]), true)
    }

    private func pump(from source: Int32, to sink: Int32, tamper: Bool) {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var history: [UInt8] = []
        var position = 0
        var emitted = 0
        var repeated = false
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(source, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            var chunk = Array(buffer[0..<n])
            if tamper {
                switch tampering {
                case .none: break
                case let .flipBit(offset):
                    if offset >= position, offset < position + n { chunk[offset - position] ^= 0x01 }
                case let .repeatFrame(at, bodyBytes):
                    guard !repeated else { break }
                    history += chunk
                    (chunk, repeated) = Self.frameTwice(history, emitted: &emitted, at: at, bodyBytes: bodyBytes)
                }
            }
            position += n
            var sent = 0
            while sent < chunk.count {
                let m = chunk.withUnsafeBytes { send(sink, $0.baseAddress! + sent, chunk.count - sent, Int32(MSG_NOSIGNAL)) }
                if m <= 0 { break }
                sent += m
            }
            if sent < chunk.count { break }
        }
        shutdown(sink, Int32(SHUT_WR))
    }
}
