import Foundation
import PhalanxTCP

#if canImport(Glibc)
import Glibc
#endif

/// The limits the TCP ring is compared with, on loopback with the ring's socket options
/// (`DataConnectionTuning`, congestion control included) unless told otherwise: one stream (a
/// sender thread and a receiver thread), and the full-duplex pattern of a 2-rank ring (two
/// threads, each sending to the other while receiving from it, on two connections).
enum RawTCPThroughput {
    /// Bytes per second of one loopback stream: the best of three transfers.
    static func measure(totalBytes: Int = 1 << 30, tuning: DataConnectionTuning = .current) throws -> Double {
        try (0..<3).map { _ in try measureOnce(totalBytes: totalBytes / 2, tuning: tuning) }.max() ?? 0
    }

    /// Bytes per second per direction in full duplex: the best of three.
    static func measureDuplex(totalBytes: Int = 512 << 20) throws -> Double {
        try (0..<3).map { _ in try measureDuplexOnce(totalBytes: totalBytes / 2) }.max() ?? 0
    }

    private static func measureOnce(totalBytes: Int, tuning: DataConnectionTuning) throws -> Double {
        let stream = try OneStreamPair(tuning: tuning)
        let start = Timing.now()
        try stream.transfer(totalBytes)
        return Double(totalBytes) / (Timing.now() - start)
    }

    /// Bytes per second per direction when two threads each send `totalBytes` to the other and
    /// receive as much at the same time (one thread per end, as each ring rank does), cycling
    /// through 1 MiB buffers.
    private static func measureDuplexOnce(totalBytes: Int) throws -> Double {
        let (a1, b1) = try connectedPair()
        let (b2, a2) = try connectedPair()
        defer { [a1, b1, a2, b2].forEach { close($0) } }
        for fd in [a1, b1, a2, b2] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK) }
        let start = Timing.now()
        let done = DispatchSemaphore(value: 0)
        let failure = LockedError()
        Thread {
            do { try pumpMegabyte(send: b2, receive: b1, totalBytes) } catch { failure.record(error) }
            done.signal()
        }.start()
        do {
            try pumpMegabyte(send: a1, receive: a2, totalBytes)
        } catch {
            // Wake the helper (its pump fails on the shut sockets), so it is done with the
            // descriptors before they are closed.
            [a1, b1, a2, b2].forEach { shutdown($0, Int32(SHUT_RDWR)) }
            done.wait()
            throw error
        }
        done.wait()
        try failure.rethrow()
        return Double(totalBytes) / (Timing.now() - start)
    }

    private static func pumpMegabyte(send out: Int32, receive inbound: Int32, _ total: Int) throws {
        let chunk = 1 << 20
        let data = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64)
        let sink = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64)
        defer { data.deallocate(); sink.deallocate() }
        data.initializeMemory(as: UInt8.self, repeating: 3)
        try RawDuplexRing.pump(send: out, from: UnsafeRawBufferPointer(data), receive: inbound, into: sink, bytes: total)
    }

    /// The first error a helper thread met, handed to the thread that waits for it.
    private final class LockedError: @unchecked Sendable {
        private let lock = NSLock()
        private var error: Error?
        func record(_ value: Error) { lock.lock(); error = error ?? value; lock.unlock() }
        func rethrow() throws {
            lock.lock()
            defer { lock.unlock() }
            if let error { throw error }
        }
    }

    /// A connected loopback TCP pair (sending end, receiving end) with the ring's options.
    static func connectedPair(tuning: DataConnectionTuning = .current) throws -> (Int32, Int32) {
        let (listener, port) = try LoopbackSocket.listen()
        defer { close(listener) }
        let sender = try LoopbackSocket.connect(port: port)
        let receiver = accept(listener, nil, nil)
        guard receiver >= 0 else {
            close(sender)
            throw BenchmarkError.wrongResult("raw TCP: accept failed: \(String(cString: strerror(errno)))")
        }
        // By default exactly the ring's tuning: the limit is what our sockets can do.
        for fd in [sender, receiver] { tuning.apply(to: fd) }
        return (sender, receiver)
    }
}
