import Foundation
import PhalanxCollectives
import PhalanxTCP

#if canImport(Glibc)
import Glibc
#endif

/// Raw TCP limits between the worker processes themselves: each rank holds one plain loopback
/// connection to its right neighbour and one from its left (with the ring's
/// `DataConnectionTuning`) — no framing, no reduction, no dependencies between frames.
///
/// - `exchange` sends a buffer to the right while it receives as many bytes from the left: the
///   ring's traffic pattern. An all-reduce of `S` bytes moves `2(p − 1)/p · S` bytes each way
///   per rank, so an exchange of that many bytes, timed in alternation with the ring, gives the
///   busbw raw TCP reaches with both directions busy on the same CPUs, sending from the message
///   and landing in a second buffer as large (the ring lands reduce-scatter segments in a 1 MiB
///   scratch instead).
/// - `oneWay` sends a buffer from rank 0 to rank 1 only: one stream between two processes, from
///   the message's memory into memory as large, with the other direction idle.
final class RawDuplexRing {
    private let right: Int32
    private let left: Int32
    private let rank: Int
    /// Where received bytes land: a buffer of its own, as large as the largest message.
    private let sink: UnsafeMutableRawBufferPointer

    /// Connects the ranks of `ring` in a second, raw ring: every rank listens on an ephemeral
    /// loopback port, the ports go round with an all-gather (exact as floats below 2^24), and each
    /// rank connects to its right neighbour's port and accepts its left neighbour. Loopback only:
    /// the ranks must share the machine, as the bench's jobs do. `largestBytes` bounds `exchange`.
    init(ring: RingCommunicator, largestBytes: Int) throws {
        let p = ring.worldSize, r = ring.rank
        rank = r
        guard p > 1 else { throw BenchmarkError.wrongResult("raw-duplex needs at least 2 ranks") }
        let (listener, port) = try LoopbackSocket.listen()
        defer { close(listener) }
        var ports = [Float](repeating: 0, count: p)
        ports[r] = Float(port)
        try ports.withUnsafeMutableBufferPointer { try ring.allGather($0, options: CollectiveOptions(timeout: .seconds(30))) }
        right = try LoopbackSocket.connect(port: UInt16(ports[(r + 1) % p]))
        // The left neighbour connects as soon as it has the ports: wait at most 30 s for it.
        var waiting = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        let deadline = Timing.now() + 30
        var ready = Int32(0)
        repeat {
            ready = poll(&waiting, 1, Int32(max(1, (deadline - Timing.now()) * 1000)))
        } while ready < 0 && errno == EINTR && Timing.now() < deadline
        let accepted = ready == 1 ? accept(listener, nil, nil) : -1
        guard accepted >= 0 else {
            close(right)
            throw BenchmarkError.wrongResult("raw-duplex: rank \((r + p - 1) % p) did not connect within 30 s")
        }
        left = accepted
        sink = UnsafeMutableRawBufferPointer.allocate(byteCount: max(largestBytes, 64), alignment: 64)
        sink.initializeMemory(as: UInt8.self, repeating: 0)
        for fd in [right, left] {
            DataConnectionTuning.current.apply(to: fd)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK)
        }
    }

    deinit {
        close(right)
        close(left)
        sink.deallocate()
    }

    /// Sends `bytes` from `source` (cycling through it) to the right neighbour while receiving
    /// as many from the left one into the sink (cycling through at most `bytes` of it). Every
    /// rank must pass the same `bytes`.
    func exchange(_ source: UnsafeRawBufferPointer, bytes: Int) throws {
        let landing = UnsafeMutableRawBufferPointer(rebasing: sink[0..<min(bytes, sink.count)])
        try Self.pump(send: right, from: source, receive: left, into: landing, bytes: bytes)
    }

    /// The most bytes one `send` or `recv` moves: 1 MiB, the ring's segment size. In jobs of the
    /// ring and `raw-duplex` alone, exchanges of 16 and 64 MiB moved 3.9 GB/s per direction with
    /// 256 KiB, 4.3–4.4 with 1 MiB, 3.3–3.6 with 4 MiB and 2.3–2.6 unbounded (docs/performance.md).
    static let chunkBytes = 1 << 20

    /// Rank 0 sends `source` to rank 1, which receives as many bytes into the sink and answers
    /// with one byte on the same connection; rank 0 returns once that byte arrived, so the time
    /// covers delivery, not just handing the bytes to the kernel. Other ranks return at once.
    func oneWay(_ source: UnsafeRawBufferPointer) throws {
        guard source.count <= sink.count else { throw BenchmarkError.wrongResult("raw-oneway: \(source.count) bytes exceed the sink") }
        let none = UnsafeMutableRawBufferPointer(start: nil, count: 0)
        var ack: UInt8 = 1
        try withUnsafeMutableBytes(of: &ack) { ackByte in
            if rank == 0 {
                try Self.pump(send: right, from: source, receive: left, into: none, bytes: source.count, receiving: 0)
                try Self.pump(send: right, from: UnsafeRawBufferPointer(none), receive: right, into: ackByte, bytes: 0, receiving: 1)
            } else if rank == 1 {
                try Self.pump(send: right, from: UnsafeRawBufferPointer(none), receive: left, into: sink, bytes: 0, receiving: source.count)
                try Self.pump(send: left, from: UnsafeRawBufferPointer(ackByte), receive: left, into: none, bytes: 1, receiving: 0)
            }
        }
    }

    /// Sends `total` bytes on `out` and receives `receiving` (by default `total`) on `inbound` at once, on one thread, with
    /// non-blocking sockets: what the sockets take and give, then a short spin, then `poll` (as
    /// the ring's transport does). The bytes cycle through `source` and `sink`. Throws after 30 s
    /// without progress or when a peer closes.
    static func pump(
        send out: Int32, from source: UnsafeRawBufferPointer, receive inbound: Int32, into sink: UnsafeMutableRawBufferPointer, bytes total: Int,
        receiving: Int? = nil, chunk: Int = chunkBytes
    ) throws {
        let expected = receiving ?? total
        var sent = 0, received = 0, idle = 0
        var lastProgress = Timing.now()
        while sent < total || received < expected {
            var moved = false
            if sent < total, let from = source.baseAddress {
                let offset = sent % source.count
                let n = send(out, from + offset, min(source.count - offset, total - sent, chunk), Int32(MSG_NOSIGNAL))
                if n > 0 { sent += n; moved = true }
                if n < 0 && errno != EAGAIN && errno != EINTR { throw BenchmarkError.wrongResult("raw TCP send: \(String(cString: strerror(errno)))") }
            }
            if received < expected, let into = sink.baseAddress {
                let offset = received % sink.count
                let n = recv(inbound, into + offset, min(sink.count - offset, expected - received, chunk), 0)
                if n > 0 { received += n; moved = true }
                if n == 0 { throw BenchmarkError.wrongResult("raw TCP: the peer closed after \(received) of \(expected) bytes") }
                if n < 0 && errno != EAGAIN && errno != EINTR { throw BenchmarkError.wrongResult("raw TCP recv: \(String(cString: strerror(errno)))") }
            }
            if moved {
                idle = 0
                lastProgress = Timing.now()
                continue
            }
            if idle < 200 {
                idle += 1
                sched_yield()
                continue
            }
            guard Timing.now() - lastProgress < 30 else { throw BenchmarkError.wrongResult("raw TCP: no progress for 30 s") }
            var entries = [
                pollfd(fd: sent < total ? out : -1, events: Int16(POLLOUT), revents: 0),
                pollfd(fd: received < expected ? inbound : -1, events: Int16(POLLIN), revents: 0),
            ]
            _ = poll(&entries, 2, 1000)
        }
    }
}
