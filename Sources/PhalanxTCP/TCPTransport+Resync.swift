#if canImport(Glibc)
import Glibc
#endif
import PhalanxCollectives

/// The unsent rest of a frame an exchange stopped in the middle of.
struct OutgoingRemainder {
    /// The frame's 48 header bytes.
    let header: [UInt8]
    /// Bytes of header + body already sent.
    let sent: Int
    /// Header + body size (the body: the payload and, when protected, its trailers).
    let total: Int

    /// What completes the frame: the rest of the header, then zeros for the rest of the payload
    /// (the receiver discards that frame, so only its length matters).
    var completion: [UInt8] {
        let headerRest = sent < Wire.headerSize ? Array(header[sent...]) : []
        return headerRest + [UInt8](repeating: 0, count: total - max(sent, Wire.headerSize))
    }
}

/// The part of a frame an exchange had received when it stopped.
struct IncomingRemainder {
    /// The header bytes (the first `headerCount` are valid).
    let header: [UInt8]
    /// Header bytes received.
    let headerCount: Int
    /// Body bytes received (the payload and, when protected, trailers).
    let payloadReceived: Int
}

extension TCPTransport {
    /// The outcome of realigning a kept connection pair.
    struct Realignment {
        /// The right connection was completed, fenced and acknowledged.
        var right: Bool
        /// The left connection was drained up to the fence, and acknowledged.
        var left: Bool
    }

    /// Brings the connections kept from this (interrupted) ring back to a frame boundary for a
    /// ring at `epoch`: the right stream's half-sent frame is completed and a fence follows;
    /// the left stream is read and discarded up to the neighbour's fence for `epoch`, which is
    /// acknowledged with one byte on the reverse path. Both run at once so neighbours doing the
    /// same never wait on each other. A side that fails (closed, garbled, too slow) must be
    /// reconnected.
    func realign(keepRight: Bool, keepLeft: Bool, epoch newEpoch: UInt64, deadline: Deadline) -> Realignment {
        var result = Realignment(right: false, left: false)
        var outgoing: [UInt8] = []
        var outSent = 0
        var awaitingAck = false
        let rightSocket = keepRight ? right : nil
        let leftSocket = keepLeft ? left : nil
        if rightSocket != nil {
            let fence = Fence.frame(epoch: newEpoch)
            outgoing = (outgoingRemainder?.completion ?? []) + fence
        }
        var drain = FrameDrain(remainder: incomingRemainder, epoch: newEpoch, protection: protection)
        var rightActive = rightSocket != nil, leftActive = leftSocket != nil
        var scratch = [UInt8](repeating: 0, count: 1 << 16)

        while rightActive || leftActive {
            if deadline.hasPassed { break }
            var progressed = false
            if rightActive, let socket = rightSocket {
                if outSent < outgoing.count {
                    let n = outgoing.withUnsafeBytes { send(socket.descriptor, $0.baseAddress! + outSent, outgoing.count - outSent, Int32(MSG_NOSIGNAL)) }
                    if n > 0 { outSent += n; progressed = true } else if n < 0 && errno != EAGAIN && errno != EINTR { rightActive = false }
                    if outSent == outgoing.count { awaitingAck = true }
                } else if awaitingAck {
                    var byte: UInt8 = 0
                    let n = recv(socket.descriptor, &byte, 1, 0)
                    if n == 1 {
                        result.right = byte == Fence.acknowledgement
                        rightActive = false
                        progressed = true
                    } else if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) { rightActive = false }
                }
            }
            if leftActive, drain.garbled { leftActive = false }
            if leftActive, let socket = leftSocket {
                let want = drain.wanted(scratchSize: scratch.count)
                let n = scratch.withUnsafeMutableBytes { recv(socket.descriptor, $0.baseAddress!, want, 0) }
                if n > 0 {
                    progressed = true
                    switch drain.consume(Array(scratch[0..<n])) {
                    case .more: break
                    case .fenced:
                        var ack = Fence.acknowledgement
                        result.left = send(socket.descriptor, &ack, 1, Int32(MSG_NOSIGNAL)) == 1
                        leftActive = false
                    case .garbled: leftActive = false
                    }
                } else if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) { leftActive = false }
            }
            if progressed { continue }
            var entries = [
                pollfd(fd: rightActive ? (rightSocket?.descriptor ?? -1) : -1, events: Int16(outSent < outgoing.count ? POLLOUT : POLLIN), revents: 0),
                pollfd(fd: leftActive ? (leftSocket?.descriptor ?? -1) : -1, events: Int16(POLLIN), revents: 0),
            ]
            _ = poll(&entries, 2, min(deadline.pollMilliseconds, 50))
        }
        return result
    }
}

/// The fence frame and its one-byte acknowledgement.
enum Fence {
    static let acknowledgement: UInt8 = 0xA5

    static func frame(epoch: UInt64) -> [UInt8] {
        Wire.encode(.fence, MessageHeader(epoch: epoch, sequence: 0, kind: .barrier, step: 0, totalCount: 0, payloadBytes: 0))
    }
}

/// Reads a stream frame by frame, discarding everything up to the fence for one epoch.
struct FrameDrain {
    enum Outcome { case more, fenced, garbled }

    private var header: [UInt8]
    private var headerCount: Int
    private var payloadLeft: Int
    private let epoch: UInt64
    private let protection: WireProtection

    /// `protection`: data frames carry trailers after their segments (fences and abort
    /// reports do not).
    init(remainder: IncomingRemainder?, epoch: UInt64, protection: WireProtection = .none) {
        header = remainder?.header ?? [UInt8](repeating: 0, count: Wire.headerSize)
        headerCount = remainder?.headerCount ?? 0
        payloadLeft = 0
        self.epoch = epoch
        self.protection = protection
        if headerCount == Wire.headerSize, let remainder {
            if let (type, decoded) = Wire.decode(header), decoded.payloadBytes <= FrameDrain.largestPayload {
                payloadLeft = max(0, bodyBytes(type, decoded) - remainder.payloadReceived)
                headerCount = payloadLeft > 0 ? Wire.headerSize : 0
            } else {
                garbled = true
            }
        }
    }

    /// Bytes after the header of a frame of `type` with `header`.
    private func bodyBytes(_ type: Wire.FrameType, _ header: MessageHeader) -> Int {
        type == .data ? protection.bodyBytes(payload: Int(header.payloadBytes)) : Int(header.payloadBytes)
    }

    /// Larger payloads than this are not believed (16 GiB).
    static let largestPayload: UInt64 = 1 << 34
    /// The interrupted frame's header could not be read: the stream cannot be realigned.
    private(set) var garbled = false

    /// How many bytes to read next, so no read crosses into the next frame's header.
    func wanted(scratchSize: Int) -> Int {
        headerCount < Wire.headerSize ? Wire.headerSize - headerCount : min(payloadLeft, scratchSize)
    }

    mutating func consume(_ bytes: [UInt8]) -> Outcome {
        if garbled { return .garbled }
        if headerCount < Wire.headerSize {
            for byte in bytes {
                header[headerCount] = byte
                headerCount += 1
            }
            guard headerCount == Wire.headerSize else { return .more }
            guard let (type, decoded) = Wire.decode(header) else { return .garbled }
            if type == .fence, decoded.epoch == epoch { return .fenced }
            guard type == .data || type == .fence, decoded.payloadBytes <= FrameDrain.largestPayload else { return .garbled }
            payloadLeft = bodyBytes(type, decoded)
            if payloadLeft == 0 { headerCount = 0 }
            return .more
        }
        payloadLeft -= bytes.count
        if payloadLeft <= 0 { headerCount = 0 }
        return .more
    }
}
