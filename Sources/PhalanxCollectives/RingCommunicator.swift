/// The ring collectives, written once over any `Transport`.
///
/// All-reduce is a reduce-scatter followed by an all-gather, each in `p − 1` steps; the buffer
/// is cut into `p` chunks (`ChunkLayout`) and each chunk into segments of at most
/// `options.segmentBytes`, so a rank sends to its right neighbour while it receives from its
/// left one, and reduces each received segment while the next arrives. Bytes sent per rank:
/// `2·(p−1)/p·N·4` for an all-reduce of `N` floats. See docs/algorithms.md.
///
/// After any failure the communicator is closed: the failing call throws the error, every rank
/// of the ring is told (`Transport.abort`), and later calls throw `.closed`.
public final class RingCommunicator: Communicator {
    /// The point-to-point transport between ring neighbours.
    public let transport: any Transport
    /// The membership epoch stamped on every frame (constant for a static job).
    public let epoch: UInt64
    /// The sequence number the next collective will carry.
    public private(set) var sequence: UInt64 = 0
    /// The error that closed the communicator, if any.
    public private(set) var failure: CollectiveError?
    private var scratch: UnsafeMutableRawPointer?
    private var scratchBytes = 0

    /// Makes a communicator over `transport`.
    public init(transport: any Transport, epoch: UInt64 = 0) {
        self.transport = transport
        self.epoch = epoch
    }

    deinit { scratch?.deallocate() }

    /// This rank.
    public var rank: Int { transport.rank }
    /// The number of ranks.
    public var worldSize: Int { transport.worldSize }

    // MARK: Collectives

    /// All-reduces of at most this many bytes circulate every rank's whole buffer once around
    /// the ring (p − 1 exchanges) and reduce locally in rank order, instead of reduce-scatter +
    /// all-gather (2(p − 1) exchanges): half the latency for messages where latency dominates.
    public var smallMessageBytes = 32 << 10

    /// Whether a ring's segments flow interleaved across steps (each segment forwarded about
    /// 2p − 3 exchanges after it arrived instead of a chunk later) rather than step by step.
    /// Both orders move the same bytes, but frames carry only their position: ranks that
    /// disagree would combine the wrong ranges without noticing. Hence not public API — only the
    /// benchmark and the tests switch it (`@_spi(Benchmarking) import PhalanxCollectives`).
    @_spi(Benchmarking) public var interleavesSteps = true

    /// Ring all-reduce in place.
    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp, options: CollectiveOptions) throws {
        try run(.allReduce, count: buffer.count) { call in
            if buffer.count * MemoryLayout<Float>.stride <= smallMessageBytes {
                try smallAllReduceSteps(buffer, op: op, call: &call, options: options)
                return
            }
            try ringSteps(buffer, reduceScatter: true, allGather: true, op: op, call: &call, options: options)
        }
    }

    /// Ring reduce-scatter in place; returns this rank's chunk.
    @discardableResult
    public func reduceScatter(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp, options: CollectiveOptions) throws -> Range<Int> {
        let layout = ChunkLayout(count: buffer.count, parts: worldSize)
        try run(.reduceScatter, count: buffer.count) { call in
            try ringSteps(buffer, reduceScatter: true, allGather: false, op: op, call: &call, options: options)
        }
        return layout.range(rank)
    }

    /// Ring all-gather in place.
    public func allGather(_ buffer: UnsafeMutableBufferPointer<Float>, options: CollectiveOptions) throws {
        try run(.allGather, count: buffer.count) { call in
            try ringSteps(buffer, reduceScatter: false, allGather: true, op: .sum, call: &call, options: options)
        }
    }

    /// Pipelined ring broadcast: segments flow from `root` around the ring.
    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, from root: Int, options: CollectiveOptions) throws {
        guard root >= 0, root < worldSize else {
            throw CollectiveError(
                .invalidArgument, operation: "broadcast", sequence: sequence, rank: rank,
                message: "root \(root) is outside 0..<\(worldSize)")
        }
        try run(.broadcast, count: buffer.count) { call in
            try broadcastSteps(buffer, root: root, call: &call, options: options)
        }
    }

    /// A barrier: a one-element all-reduce on the small-message path (p − 1 exchanges), which
    /// completes on no rank before every rank has sent.
    public func barrier(options: CollectiveOptions) throws {
        var token: Float = 1
        try withUnsafeMutablePointer(to: &token) { pointer in
            let buffer = UnsafeMutableBufferPointer(start: pointer, count: 1)
            try run(.barrier, count: 1) { call in
                try smallAllReduceSteps(buffer, op: .sum, call: &call, options: options)
            }
        }
    }

    // MARK: Plumbing

    /// One call's identity, stamped on its frames.
    struct Call {
        let kind: CollectiveKind
        let sequence: UInt64
        let count: Int
        var sent: UInt32 = 0
        var received: UInt32 = 0
    }

    private func run(_ kind: CollectiveKind, count: Int, _ body: (inout Call) throws -> Void) throws {
        if let failure {
            throw CollectiveError(
                .closed, operation: kind.description, sequence: sequence, rank: rank, peer: failure.peer,
                message: "the communicator failed earlier: \(failure)")
        }
        var call = Call(kind: kind, sequence: sequence, count: count)
        sequence += 1
        guard worldSize > 1 else { return }
        do {
            try body(&call)
        } catch let error as CollectiveError {
            failure = error
            transport.abort(error)
            throw error
        }
    }

    private func header(_ call: Call, step: UInt32, elements: Int) -> MessageHeader {
        MessageHeader(
            epoch: epoch, sequence: call.sequence, kind: call.kind, step: step,
            totalCount: UInt64(call.count), payloadBytes: UInt64(elements * MemoryLayout<Float>.stride))
    }

    private func scratchBuffer(bytes: Int) -> UnsafeMutableRawPointer {
        if let scratch, scratchBytes >= bytes { return scratch }
        scratch?.deallocate()
        scratchBytes = Swift.max(bytes, 64)
        let fresh = UnsafeMutableRawPointer.allocate(byteCount: scratchBytes, alignment: 64)
        scratch = fresh
        return fresh
    }

    /// One exchange: optionally send `outgoing` elements, optionally receive `incoming` elements.
    private func exchange(
        _ call: inout Call, base: UnsafeMutablePointer<Float>?, send outgoing: Range<Int>?, receive incoming: Range<Int>?,
        into destination: UnsafeMutableRawPointer?, options: CollectiveOptions, progress: (Int) throws -> Void
    ) throws {
        let sendHeader = outgoing.map { header(call, step: call.sent, elements: $0.count) }
        let expected = incoming.map { header(call, step: call.received, elements: $0.count) }
        let sendBytes = UnsafeRawBufferPointer(
            start: outgoing.flatMap { range in base.map { UnsafeRawPointer($0 + range.lowerBound) } },
            count: (outgoing?.count ?? 0) * MemoryLayout<Float>.stride)
        let receiveBytes = UnsafeMutableRawBufferPointer(
            start: destination, count: (incoming?.count ?? 0) * MemoryLayout<Float>.stride)
        try transport.exchange(
            send: sendHeader, sendBytes, receive: expected, into: receiveBytes, timeout: options.timeout, progress: progress)
        if outgoing != nil { call.sent += 1 }
        if incoming != nil { call.received += 1 }
    }

    /// Reduce-scatter (afterwards chunk `rank` of `buffer` holds the reduction over all ranks,
    /// divided by p for `.average`), all-gather (each rank starts with its chunk `rank` and ends
    /// with every chunk), or both: one `RingSchedule` run by the transport.
    private func ringSteps(
        _ buffer: UnsafeMutableBufferPointer<Float>, reduceScatter: Bool, allGather: Bool, op: ReduceOp, call: inout Call,
        options: CollectiveOptions
    ) throws {
        let layout = ChunkLayout(count: buffer.count, parts: worldSize)
        let segment = options.segmentElements
        let scratch = reduceScatter
            ? scratchBuffer(bytes: RingSchedule.scratchElements(layout: layout, segment: segment) * MemoryLayout<Float>.stride)
                .assumingMemoryBound(to: Float.self)
            : nil
        let current = call
        let schedule = RingSchedule(
            base: buffer.baseAddress, scratch: scratch, layout: layout, rank: rank, reduceScatter: reduceScatter,
            allGather: allGather, op: op, segment: segment, interleaved: interleavesSteps
        ) { [self] outgoing, index, elements in
            header(current, step: (outgoing ? current.sent : current.received) + UInt32(index), elements: elements)
        }
        try transport.run(schedule, timeout: options.timeout)
        call.sent += UInt32(schedule.sendCount)
        call.received += UInt32(schedule.receiveCount)
    }

    /// Every rank's whole buffer travels once round the ring (an all-gather of the inputs into a
    /// scratch of p slots), then each rank combines the slots in rank order 0, 1, …, p − 1, so
    /// every rank computes bit-identical results.
    private func smallAllReduceSteps(
        _ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp, call: inout Call, options: CollectiveOptions
    ) throws {
        let p = worldSize, r = rank, n = buffer.count
        guard let base = buffer.baseAddress, n > 0 else {
            // Still one message per step, so that ranks with other counts find out.
            let empty = UnsafeMutableBufferPointer<Float>(start: nil, count: 0)
            try ringSteps(empty, reduceScatter: false, allGather: true, op: op, call: &call, options: options)
            return
        }
        let slots = UnsafeMutablePointer<Float>(scratchBuffer(bytes: p * n * MemoryLayout<Float>.stride).assumingMemoryBound(to: Float.self))
        (slots + r * n).update(from: base, count: n)
        let gathered = UnsafeMutableBufferPointer(start: slots, count: p * n)
        try ringSteps(gathered, reduceScatter: false, allGather: true, op: op, call: &call, options: options)
        base.update(from: slots, count: n)
        for source in 1..<p { op.combine(into: base, from: slots + source * n, count: n) }
        if op == .average {
            let scale = 1 / Float(p)
            for i in 0..<n { base[i] *= scale }
        }
    }

    /// Segments flow root → root+1 → … → root−1; a middle rank forwards segment j−1 while it
    /// receives segment j; finally root−1 sends the root an empty confirmation.
    private func broadcastSteps(
        _ buffer: UnsafeMutableBufferPointer<Float>, root: Int, call: inout Call, options: CollectiveOptions
    ) throws {
        let p = worldSize, position = ((rank - root) % p + p) % p
        let segments = ChunkLayout.segments(of: 0..<buffer.count, size: options.segmentElements)
        let base = buffer.baseAddress
        let sends = position == p - 1 ? 0 : segments.count
        let receives = position == 0 ? 0 : segments.count
        let rounds = position == 0 || position == p - 1 ? segments.count : segments.count + 1
        for j in 0..<rounds {
            // A forwarding rank sends in round j the segment it received in round j − 1.
            let sendIndex = position == 0 ? j : j - 1
            let outgoing = sendIndex >= 0 && sendIndex < sends ? segments[sendIndex] : nil
            let incoming = j < receives ? segments[j] : nil
            let destination = incoming.flatMap { range in base.map { UnsafeMutableRawPointer($0 + range.lowerBound) } }
            try exchange(&call, base: base, send: outgoing, receive: incoming, into: destination, options: options) { _ in }
        }
        // The last rank confirms to the root (its right neighbour) with an empty message that
        // carries its element count: a root called with another count then fails as well.
        if position == p - 1 {
            try exchange(&call, base: base, send: 0..<0, receive: nil, into: nil, options: options) { _ in }
        } else if position == 0 {
            try exchange(&call, base: base, send: nil, receive: 0..<0, into: nil, options: options) { _ in }
        }
    }
}
