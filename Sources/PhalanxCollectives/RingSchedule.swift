/// The frames of a ring reduce-scatter, all-gather, or both back to back (an all-reduce), for
/// one rank: every chunk a rank sends after its first is one it has just received, so outgoing
/// frame (step s, segment j) waits only for incoming frame (step s − 1, segment j), not for the
/// whole step.
///
/// Reduce-scatter step k sends chunk `r − k − 1` and receives chunk `r − k − 2` (mod p), which
/// it combines into the buffer; all-gather step k sends chunk `r − k` and receives chunk
/// `r − k − 1` straight into place. Chunks are cut into segments of `segment` elements.
final class RingSchedule: FrameSchedule {
    /// A frame to send: its element range, and the incoming frames it waits for.
    private struct Outgoing {
        let range: Range<Int>
        let required: Int
    }

    /// A frame to receive: its element range; whether it is combined into the buffer
    /// (reduce-scatter) or received in place; whether `.average` scales it once complete (the
    /// last reduce-scatter step: the rank's own chunk).
    private struct Incoming {
        let range: Range<Int>
        let combines: Bool
        let scales: Bool
    }

    private let base: UnsafeMutablePointer<Float>?
    private let scratch: UnsafeMutablePointer<Float>?
    private let op: ReduceOp
    private let worldSize: Int
    private let header: (_ outgoing: Bool, _ index: Int, _ elements: Int) -> MessageHeader
    private var outgoingFrames: [Outgoing] = []
    private var incomingFrames: [Incoming] = []
    /// The incoming frame being combined, and how many of its elements are combined.
    private var combining = -1
    private var combined = 0

    /// The largest segment in elements: the scratch a reduce-scatter needs.
    static func scratchElements(layout: ChunkLayout, segment: Int) -> Int {
        Swift.min(segment, Swift.max(layout.range(0).count, 1))
    }

    /// - Parameters:
    ///   - base: the buffer (nil when it is empty).
    ///   - scratch: `scratchElements` floats, needed when `reduceScatter` is true.
    ///   - interleaved: order the frames as `order(_:interleaved:)` describes.
    ///   - header: the header of outgoing (true) or incoming (false) frame `index` with `elements` floats.
    init(
        base: UnsafeMutablePointer<Float>?, scratch: UnsafeMutablePointer<Float>?, layout: ChunkLayout, rank r: Int,
        reduceScatter: Bool, allGather: Bool, op: ReduceOp, segment: Int, interleaved: Bool,
        header: @escaping (_ outgoing: Bool, _ index: Int, _ elements: Int) -> MessageHeader
    ) {
        self.base = base
        self.scratch = scratch
        self.op = op
        self.worldSize = layout.parts
        self.header = header
        let p = layout.parts
        func chunk(_ index: Int) -> Range<Int> { layout.range(((index % p) + p) % p) }
        var steps: [(send: Range<Int>, receive: Range<Int>, combine: Bool, last: Bool)] = []
        if reduceScatter {
            for k in 0..<(p - 1) { steps.append((chunk(r - k - 1), chunk(r - k - 2), true, k == p - 2)) }
        }
        if allGather {
            for k in 0..<(p - 1) { steps.append((chunk(r - k), chunk(r - k - 1), false, false)) }
        }
        let sends = steps.map { ChunkLayout.segments(of: $0.send, size: segment) }
        let receives = steps.map { ChunkLayout.segments(of: $0.receive, size: segment) }
        let outgoingOrder = Self.order(sends, interleaved: interleaved)
        let incomingOrder = Self.order(receives, interleaved: interleaved)
        var incomingPosition: [[Int]] = receives.map { [Int](repeating: 0, count: $0.count) }
        for (position, frame) in incomingOrder.enumerated() {
            incomingPosition[frame.step][frame.segment] = position
            let step = steps[frame.step]
            incomingFrames.append(Incoming(
                range: receives[frame.step][frame.segment], combines: step.combine, scales: step.last && op == .average))
        }
        for frame in outgoingOrder {
            // The chunk sent at step s is the one received at step s − 1, segmented alike.
            let previous = frame.step > 0 ? incomingPosition[frame.step - 1] : []
            let required = frame.step == 0 ? 0 : (frame.segment < previous.count ? previous[frame.segment] + 1 : incomingFrames.count)
            outgoingFrames.append(Outgoing(range: sends[frame.step][frame.segment], required: required))
        }
    }

    /// The order of the frames (step, segment) on the wire. Step by step, or interleaved: by
    /// s + j, and frame (s, j) just before frame (s − 1, j + 1). A rank then forwards a segment
    /// about 2p − 3 exchanges after it arrived (and was combined) — one for p = 2 — instead of a
    /// chunk's S segments later, so large buffers forward segments still in cache.
    private static func order(_ segments: [[Range<Int>]], interleaved: Bool) -> [(step: Int, segment: Int)] {
        var frames: [(step: Int, segment: Int)] = []
        for (s, step) in segments.enumerated() {
            for j in step.indices { frames.append((s, j)) }
        }
        guard interleaved else { return frames }
        return frames.sorted { a, b in
            let ka = a.step + a.segment, kb = b.step + b.segment
            return ka != kb ? ka < kb : a.step > b.step
        }
    }

    var sendCount: Int { outgoingFrames.count }
    var receiveCount: Int { incomingFrames.count }

    func requiredReceives(beforeSending index: Int) -> Int { outgoingFrames[index].required }

    func outgoing(_ index: Int) -> (header: MessageHeader, payload: UnsafeRawBufferPointer) {
        let range = outgoingFrames[index].range
        let bytes = range.count * MemoryLayout<Float>.stride
        return (header(true, index, range.count), UnsafeRawBufferPointer(start: base.map { UnsafeRawPointer($0 + range.lowerBound) }, count: bytes))
    }

    func incoming(_ index: Int) -> (header: MessageHeader, destination: UnsafeMutableRawBufferPointer) {
        let frame = incomingFrames[index]
        let bytes = frame.range.count * MemoryLayout<Float>.stride
        let start = frame.combines ? scratch.map { UnsafeMutableRawPointer($0) } : base.map { UnsafeMutableRawPointer($0 + frame.range.lowerBound) }
        return (header(false, index, frame.range.count), UnsafeMutableRawBufferPointer(start: start, count: bytes))
    }

    /// Combines every element that has fully arrived while the rest is in flight; scales the
    /// rank's own chunk for `.average` once it is complete.
    func received(_ index: Int, bytes: Int) throws {
        let frame = incomingFrames[index]
        guard frame.combines, let base, let scratch else { return }
        if combining != index {
            combining = index
            combined = 0
        }
        let ready = bytes / MemoryLayout<Float>.stride
        guard ready > combined else { return }
        op.combine(into: base + frame.range.lowerBound + combined, from: scratch + combined, count: ready - combined)
        combined = ready
        if frame.scales, combined == frame.range.count {
            let scale = 1 / Float(worldSize)
            for i in frame.range { base[i] *= scale }
        }
    }
}
