#if canImport(Glibc)
import Glibc
#endif
import PhalanxCollectives

extension TCPTransport {
    /// Non-blocking retries (each after a `sched_yield`) before an exchange sleeps in `poll`.
    static let spinLimit = 200

    /// Sends to the right and receives from the left at once, on one thread, with non-blocking
    /// sockets and `poll`: header and payload leave with one `sendmsg` from the caller's memory,
    /// and the payload is received straight into `incoming`.
    public func exchange(
        send header: MessageHeader?, _ outgoing: UnsafeRawBufferPointer,
        receive expected: MessageHeader?, into incoming: UnsafeMutableRawBufferPointer,
        timeout: Duration, progress: (Int) throws -> Void
    ) throws {
        let context = header ?? expected
        func failure(_ code: CollectiveError.Code, peer: Int?, _ message: String) -> CollectiveError {
            CollectiveError(code, during: context, rank: rank, peer: peer, message: message)
        }
        if let aborted { throw failure(.closed, peer: aborted.peer, "the transport was aborted: \(aborted.message)") }
        if let stop = interruption?.current { throw failure(.peerAborted, peer: stop.peer, "interrupted: \(stop.reason)") }
        guard let right, let left else { return }

        var headerBytes = header.map { Wire.encode(.data, $0) } ?? []
        if !headerBytes.isEmpty { headerBytes[6] = protection.code }
        let sendTotal = header == nil ? 0 : Wire.headerSize + protection.bodyBytes(payload: outgoing.count)
        // Protected modes: trailers (and ciphertext) for the whole frame before it leaves.
        let sealed: SealedBody?
        if protection != .none, header != nil {
            guard let keys = right.session else { throw failure(.protocolViolation, peer: rightRank, "the connection to rank \(rightRank) has no session keys") }
            do { sealed = try SealedBody(mode: protection, header: headerBytes, payload: outgoing, keys: keys) } catch {
                throw failure(.protocolViolation, peer: rightRank, "sealing a frame for rank \(rightRank) failed: \(error)")
            }
        } else {
            sealed = nil
        }
        var sent = 0
        var receivedHeader = [UInt8](repeating: 0, count: Wire.headerSize)
        var headerCount = 0, payloadCount = 0
        // Protected modes: the body of the incoming frame, once its header is in.
        var opened: OpenedBody?
        var receiving = expected != nil
        var lastProgress = ContinuousClock.now
        var idleSpins = 0
        outgoingRemainder = nil
        incomingRemainder = nil
        defer {
            if sent > 0 && sent < sendTotal { outgoingRemainder = OutgoingRemainder(header: headerBytes, sent: sent, total: sendTotal) }
            if receiving && headerCount > 0 {
                incomingRemainder = IncomingRemainder(header: receivedHeader, headerCount: headerCount, payloadReceived: opened?.received ?? payloadCount)
            }
        }

        // The trailers and ciphertext must outlive every sendmsg that points into them.
        defer { withExtendedLifetime(sealed) {} }
        /// Receives what the left connection has, up to `count` bytes into `pointer`: the
        /// count, 0 when nothing is there yet; a close or an error is the neighbour's failure.
        func receiveLeft(_ pointer: UnsafeMutableRawPointer, _ count: Int, midMessage: Bool) throws -> Int {
            let n = recv(left.descriptor, pointer, count, 0)
            if n == 0 {
                throw failure(.connectionLost, peer: leftRank, "connection from rank \(leftRank) closed\(midMessage ? " mid-message" : "") (it exited or was killed)")
            }
            guard n < 0 else { return n }
            let code = errno
            if code == EAGAIN || code == EWOULDBLOCK || code == EINTR { return 0 }
            throw failure(.connectionLost, peer: leftRank, "receiving from rank \(leftRank) failed: \(String(cString: strerror(code)))")
        }
        while sent < sendTotal || receiving {
            var moved = false
            // Send what the socket takes.
            if sent < sendTotal {
                let n = headerBytes.withUnsafeBytes { head -> Int in
                    var vectors: [iovec] = []
                    if sent < Wire.headerSize {
                        vectors.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: head.baseAddress! + sent), iov_len: Wire.headerSize - sent))
                    }
                    let payloadSent = max(0, sent - Wire.headerSize)
                    if let sealed {
                        for piece in sealed.pieces(payload: outgoing, from: payloadSent) where piece.count > 0 {
                            vectors.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: piece.baseAddress), iov_len: piece.count))
                        }
                    } else if let base = outgoing.baseAddress, payloadSent < outgoing.count {
                        vectors.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: base + payloadSent), iov_len: outgoing.count - payloadSent))
                    }
                    return vectors.withUnsafeMutableBufferPointer { v in
                        var message = msghdr()
                        message.msg_iov = v.baseAddress
                        message.msg_iovlen = v.count
                        return sendmsg(right.descriptor, &message, Int32(MSG_NOSIGNAL))
                    }
                }
                if n > 0 {
                    sent += n
                    moved = true
                } else if n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
                    let reason = String(cString: strerror(errno))
                    // A neighbour that failed first has usually left an abort report: prefer it.
                    try readReverseFrame(from: right, peer: rightRank, failure)
                    throw failure(.connectionLost, peer: rightRank, "sending to rank \(rightRank) failed: \(reason)")
                }
            }
            // Receive what has arrived: the header first, then the payload into place.
            if receiving, let expected {
                if headerCount < Wire.headerSize {
                    let n = try receivedHeader.withUnsafeMutableBytes { try receiveLeft($0.baseAddress! + headerCount, Wire.headerSize - headerCount, midMessage: false) }
                    if n > 0 {
                        headerCount += n
                        moved = true
                        if headerCount == Wire.headerSize {
                            try validate(receivedHeader, against: expected, from: left, peer: leftRank, failure)
                            if protection != .none {
                                guard let keys = left.session else {
                                    throw failure(.protocolViolation, peer: leftRank, "the connection from rank \(leftRank) has no session keys")
                                }
                                opened = OpenedBody(mode: protection, header: receivedHeader, payloadBytes: incoming.count, keys: keys, endpoint: left.endpoint)
                            }
                        }
                    }
                }
                if headerCount == Wire.headerSize, var body = opened, !body.isComplete {
                    let before = body.received
                    let verified: Int?
                    do {
                        verified = try body.receive(into: incoming) { try receiveLeft($0, $1, midMessage: true) }
                    } catch let error as WireIntegrityError {
                        opened = body
                        throw failure(.protocolViolation, peer: leftRank, "\(error) (rank \(leftRank), wire protection \(protection.rawValue))")
                    }
                    opened = body
                    if body.received > before { moved = true }
                    if let verified { try progress(verified) }
                    if body.isComplete { receiving = false }
                } else if headerCount == Wire.headerSize && opened == nil && payloadCount < incoming.count {
                    let n = try receiveLeft(incoming.baseAddress! + payloadCount, incoming.count - payloadCount, midMessage: true)
                    if n > 0 {
                        payloadCount += n
                        moved = true
                        try progress(payloadCount)
                    }
                }
                if headerCount == Wire.headerSize && opened == nil && payloadCount == incoming.count { receiving = false }
            }
            if !(sent < sendTotal || receiving) { break }
            if moved {
                lastProgress = .now
                idleSpins = 0
                continue
            }
            // Spin briefly before sleeping in poll: a small message's reply usually arrives within
            // tens of microseconds, and waking from poll costs about as much. sched_yield keeps
            // the spin polite when ranks outnumber cores.
            if idleSpins < Self.spinLimit {
                idleSpins += 1
                sched_yield()
                continue
            }
            if let stop = interruption?.current { throw failure(.peerAborted, peer: stop.peer, "interrupted: \(stop.reason)") }
            // Nothing moved: wait for either socket. While sending, the right socket is also
            // watched for an abort report or a close; once our frame is out, a close there is the
            // neighbour finishing normally, and a failure reaches us round the other side.
            let sending = sent < sendTotal
            // A negative descriptor is skipped by poll: an idle socket's hang-up must not wake us.
            var entries = [
                pollfd(fd: sending ? right.descriptor : -1, events: Int16(POLLIN) | Int16(POLLOUT), revents: 0),
                pollfd(fd: receiving ? left.descriptor : -1, events: Int16(POLLIN), revents: 0),
                pollfd(fd: interruption?.wakeDescriptor ?? -1, events: Int16(POLLIN), revents: 0),
            ]
            let remaining = Deadline(lastProgress, plus: timeout)
            let ready = poll(&entries, 3, remaining.pollMilliseconds)
            if ready < 0 && errno != EINTR { throw failure(.connectionLost, peer: nil, "poll failed: \(String(cString: strerror(errno)))") }
            if remaining.hasPassed {
                let waitingOn = receiving ? leftRank : rightRank
                throw failure(.timeout, peer: waitingOn, "no progress with rank \(waitingOn) for \(timeout) (hung, stopped or too slow)")
            }
            if sending, entries[0].revents & (Int16(POLLIN) | Int16(POLLHUP) | Int16(POLLERR)) != 0 {
                try readReverseFrame(from: right, peer: rightRank, failure)
            }
        }
    }

    /// Checks a received header against the expected one.
    private func validate(
        _ raw: [UInt8], against expected: MessageHeader, from socket: Socket, peer: Int,
        _ failure: (CollectiveError.Code, Int?, String) -> CollectiveError
    ) throws {
        guard let (type, received) = Wire.decode(raw) else {
            throw failure(.protocolViolation, peer, "rank \(peer) sent bytes that are not a Phalanx frame")
        }
        if type == .abort { throw try abortReport(received, from: socket, peer: peer, failure) }
        if received.totalCount != expected.totalCount {
            throw failure(.sizeMismatch, peer, "rank \(peer) called \(expected.kind) with \(received.totalCount) elements, this rank with \(expected.totalCount)")
        }
        guard raw[6] == protection.code else {
            let theirs = WireProtection(code: raw[6])?.rawValue ?? "unknown (\(raw[6]))"
            throw failure(.protocolViolation, peer, "rank \(peer) sends frames with wire protection \(theirs), this rank expects \(protection.rawValue): give every member the same PHALANX_WIRE_PROTECTION")
        }
        guard received == expected else {
            throw failure(.protocolViolation, peer, "stale or foreign frame from rank \(peer): got \(describe(received)), expected \(describe(expected))")
        }
    }

    private func describe(_ h: MessageHeader) -> String {
        "\(h.kind) #\(h.sequence) epoch \(h.epoch) step \(h.step) (\(h.payloadBytes) bytes)"
    }

    /// The right neighbour never sends data to us: readable means an abort report or a close.
    private func readReverseFrame(from socket: Socket, peer: Int, _ failure: (CollectiveError.Code, Int?, String) -> CollectiveError) throws {
        let raw: [UInt8]
        do { raw = try socket.readExactly(Wire.headerSize, deadline: Deadline(after: .seconds(1))) } catch {
            throw failure(.connectionLost, peer, "connection to rank \(peer) closed (it exited or was killed)")
        }
        guard let (type, header) = Wire.decode(raw), type == .abort else {
            throw failure(.protocolViolation, peer, "rank \(peer) sent an unexpected frame on the reverse path")
        }
        throw try abortReport(header, from: socket, peer: peer, failure)
    }

    /// Reads an abort frame's report and turns it into the error to throw.
    private func abortReport(
        _ header: MessageHeader, from socket: Socket, peer: Int, _ failure: (CollectiveError.Code, Int?, String) -> CollectiveError
    ) throws -> CollectiveError {
        let length = Int(min(header.payloadBytes, 65_536))
        let text = (try? socket.readExactly(length, deadline: Deadline(after: .seconds(1)))).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let parts = text.split(separator: "\u{1F}", maxSplits: 2, omittingEmptySubsequences: false)
        let origin = parts.count > 0 ? String(parts[0]) : "\(peer)"
        let lost = parts.count > 1 ? Int(parts[1]) : nil
        let message = parts.count > 2 ? String(parts[2]) : text
        return failure(.peerAborted, lost ?? peer, "rank \(origin) reported: \(message)")
    }

    /// Tells both neighbours about `error` (an abort frame, or a close when a frame is half sent).
    public func abort(_ error: CollectiveError) {
        guard markAborted(error) else { return }
        if let abortHandler {
            // Elastic mode: the membership layer tells everyone; the streams stay realignable.
            abortHandler(error)
            return
        }
        let origin = error.code == .peerAborted ? "\(error.rank) (relaying)" : "\(error.rank)"
        let report = Array("\(origin)\u{1F}\(error.peer.map(String.init) ?? "")\u{1F}\(error.code): \(error.message)".utf8.prefix(60_000))
        let header = MessageHeader(epoch: epoch, sequence: error.sequence, kind: .allReduce, step: 0, totalCount: 0, payloadBytes: UInt64(report.count))
        let frame = Wire.encode(.abort, header) + report
        logger.error("rank \(rank) aborting the ring: \(error)")
        if let right {
            if outgoingRemainder != nil { right.shutdown() } else {
                try? right.writeAll(frame, deadline: Deadline(after: .milliseconds(200)))
                right.shutdownWrite()
            }
        }
        if let left {
            try? left.writeAll(frame, deadline: Deadline(after: .milliseconds(200)))
            left.shutdownWrite()
        }
    }
}
