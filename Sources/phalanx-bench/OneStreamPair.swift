import Foundation
import PhalanxTCP

#if canImport(Glibc)
import Glibc
#endif

/// One loopback TCP stream kept open between calls, with the ring's socket tuning unless told
/// otherwise: `transfer` sends `bytes` from a 4 MiB buffer on the calling thread while a
/// resident thread drains them. `RawTCPThroughput.measure` times it once; the `raw-stream`
/// backend of `allreduce-worker` times it in alternation with the ring. Deinit stops the
/// thread and closes both ends.
final class OneStreamPair {
    /// What the resident receiver thread shares with the caller (never the pair itself, so the
    /// pair can be released).
    private final class Receiver: @unchecked Sendable {
        let descriptor: Int32
        let start = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        private let lock = NSLock()
        private var pending = 0
        private var drained = 0

        init(descriptor: Int32) { self.descriptor = descriptor }

        /// Asks the thread to drain `bytes` (a negative count ends it).
        func request(_ bytes: Int) {
            lock.lock()
            pending = bytes
            lock.unlock()
            start.signal()
        }

        var received: Int {
            lock.lock()
            defer { lock.unlock() }
            return drained
        }

        func loop(chunk: Int) {
            let sink = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 64)
            defer { sink.deallocate() }
            while true {
                start.wait()
                lock.lock()
                let total = pending
                lock.unlock()
                if total < 0 { return }
                var count = 0
                while count < total {
                    let n = recv(descriptor, sink, min(chunk, total - count), 0)
                    if n <= 0 { break }
                    count += n
                }
                lock.lock()
                drained = count
                lock.unlock()
                done.signal()
            }
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

    /// Sends `bytes` through the stream and waits until they were received.
    func transfer(_ bytes: Int) throws {
        receiver.request(bytes)
        var sent = 0
        while sent < bytes {
            let n = send(sender, data, min(chunk, bytes - sent), Int32(MSG_NOSIGNAL))
            if n <= 0 {
                // The receiver would wait for bytes that never come: end the stream instead.
                shutdown(sender, Int32(SHUT_WR))
                break
            }
            sent += n
        }
        receiver.done.wait()
        guard receiver.received == bytes else { throw BenchmarkError.wrongResult("raw TCP stream moved \(receiver.received) of \(bytes) bytes") }
    }

    deinit {
        receiver.request(-1)
        close(sender)
        close(receiver.descriptor)
        data.deallocate()
    }
}
