import Foundation
import PhalanxTCP

#if canImport(Glibc)
import Glibc
#endif

/// One loopback TCP stream inside this process, kept open between calls, with the ring's
/// socket tuning unless told otherwise. A resident thread drains it continuously into a 4 MiB
/// buffer; `transfer` sends `bytes` from another 4 MiB buffer on the calling thread and returns
/// once they were all received. Both buffers stay in cache, and the threads sleep in `recv` and
/// `send` when they must wait (blocking sockets). `RawTCPThroughput.measure` times one long transfer; the `raw-stream` backend
/// of `allreduce-worker` times transfers in alternation with the ring. Deinit ends the stream;
/// the thread then closes its end and exits.
final class OneStreamPair {
    /// What the receiver thread shares with the caller (never the pair itself, so the pair can
    /// be released while the thread finishes).
    private final class Receiver: @unchecked Sendable {
        let descriptor: Int32
        private let condition = NSCondition()
        private var drained = 0
        private var ended = false

        init(descriptor: Int32) { self.descriptor = descriptor }

        /// Drains the stream until it ends or fails, counting the bytes; then closes it.
        func loop(chunk: Int) {
            let sink = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 64)
            defer {
                sink.deallocate()
                close(descriptor)
            }
            while true {
                let n = recv(descriptor, sink, chunk, 0)
                if n < 0 && errno == EINTR { continue }
                condition.lock()
                if n > 0 { drained += n } else { ended = true }
                condition.broadcast()
                condition.unlock()
                if n <= 0 { return }
            }
        }

        var received: Int {
            condition.lock()
            defer { condition.unlock() }
            return drained
        }

        /// Waits until `target` bytes in all were received; false if the stream ended first or
        /// `seconds` passed.
        func wait(until target: Int, seconds: Double) -> Bool {
            let deadline = Date(timeIntervalSinceNow: seconds)
            condition.lock()
            defer { condition.unlock() }
            while drained < target && !ended {
                if !condition.wait(until: deadline) { break }
            }
            return drained >= target
        }
    }

    private let sender: Int32
    private let receiver: Receiver
    private let chunk = 4 << 20
    private let data: UnsafeMutableRawPointer

    init(tuning: DataConnectionTuning = .current) throws {
        let (sending, receiving) = try RawTCPThroughput.connectedPair(tuning: tuning)
        sender = sending
        receiver = Receiver(descriptor: receiving)
        data = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 64)
        memset(data, 7, chunk)
        let thread = Thread { [receiver, chunk] in receiver.loop(chunk: chunk) }
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Sends `bytes` through the stream and waits (at most 30 s) until they were received.
    func transfer(_ bytes: Int) throws {
        let target = receiver.received + bytes
        var sent = 0
        while sent < bytes {
            let n = send(sender, data, min(chunk, bytes - sent), Int32(MSG_NOSIGNAL))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw BenchmarkError.wrongResult("raw TCP stream: send failed after \(sent) of \(bytes) bytes") }
            sent += n
        }
        guard receiver.wait(until: target, seconds: 30) else {
            throw BenchmarkError.wrongResult("raw TCP stream: \(bytes - (target - receiver.received)) of \(bytes) bytes arrived")
        }
    }

    deinit {
        // The receiver sees the end of the stream and closes its side.
        close(sender)
        data.deallocate()
    }
}
