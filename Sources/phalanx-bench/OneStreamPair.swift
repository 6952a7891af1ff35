import Foundation
import PhalanxTCP

#if canImport(Glibc)
import Glibc
#endif

/// One loopback TCP stream kept open between calls, with the ring's socket tuning unless told
/// otherwise: `transfer` sends `bytes` from a 4 MiB buffer on the calling thread while a
/// resident thread drains them. `RawTCPThroughput.measure` times it once; the `raw-stream`
/// backend of `allreduce-worker` times it in alternation with the ring.
final class OneStreamPair: @unchecked Sendable {
    private let sender: Int32
    private let receiver: Int32
    private let start = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var pending = 0
    private var drained = 0
    private let chunk = 4 << 20
    private let data: UnsafeMutableRawPointer

    init(tuning: DataConnectionTuning = .current) throws {
        (sender, receiver) = try RawTCPThroughput.connectedPair(tuning: tuning)
        data = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 64)
        memset(data, 7, chunk)
        let thread = Thread { [self] in
            let sink = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 64)
            defer { sink.deallocate() }
            while true {
                start.wait()
                lock.lock()
                let total = pending
                lock.unlock()
                if total < 0 { return }
                var received = 0
                while received < total {
                    let n = recv(receiver, sink, min(chunk, total - received), 0)
                    if n <= 0 { break }
                    received += n
                }
                lock.lock()
                drained = received
                lock.unlock()
                done.signal()
            }
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Sends `bytes` through the stream and waits until they were received.
    func transfer(_ bytes: Int) throws {
        lock.lock()
        pending = bytes
        lock.unlock()
        start.signal()
        var sent = 0
        while sent < bytes {
            let n = send(sender, data, min(chunk, bytes - sent), Int32(MSG_NOSIGNAL))
            if n <= 0 { break }
            sent += n
        }
        done.wait()
        lock.lock()
        defer { lock.unlock() }
        guard drained == bytes else { throw BenchmarkError.wrongResult("raw TCP stream moved \(drained) of \(bytes) bytes") }
    }

    deinit {
        lock.lock()
        pending = -1
        lock.unlock()
        start.signal()
        close(sender)
        close(receiver)
        data.deallocate()
    }
}
