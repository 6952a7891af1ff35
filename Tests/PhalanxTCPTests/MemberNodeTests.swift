import Foundation
import PhalanxCollectives
import PhalanxTesting
@testable import PhalanxTCP
import Testing

/// The elastic substrate in one process: member listeners, control requests, strangers,
/// ring rebuilding with kept connections realigned after an interrupted
/// exchange.
@Suite(.serialized) struct MemberNodeTests {
    let credentials = JobCredentials(jobID: "member-test", secret: Array("secret".utf8))

    @Test func controlRequestsAreAnsweredAndStrangersRefused() throws {
        let server = try MemberNode(host: "127.0.0.1", credentials: credentials)
        server.memberID = 7
        server.start { request in request.reply(Array("echo:".utf8) + request.payload) }
        let client = try MemberNode(host: "127.0.0.1", credentials: credentials)
        let reply = try client.request(Array("hi".utf8), to: server.address(id: 7), id: 3, epoch: 5, timeout: .seconds(5))
        #expect(String(decoding: reply, as: UTF8.self) == "echo:hi")
        // The wrong id at that address is an error, not a silent success.
        #expect(throws: SocketError.self) { try client.request([1], to: server.address(id: 8), id: 3, epoch: 5, timeout: .seconds(2)) }

        let stranger = try MemberNode(host: "127.0.0.1", credentials: JobCredentials(jobID: "member-test", secret: Array("wrong".utf8)))
        #expect(throws: (any Error).self) { try stranger.request([1], to: server.address(id: 7), id: 3, epoch: 5, timeout: .seconds(2)) }
        // Raw garbage on the port.
        let garbage = try Socket.connect(host: "127.0.0.1", port: server.port, deadline: Deadline(after: .seconds(2)))
        try garbage.writeAll(Array(repeating: 0x41, count: 200), deadline: Deadline(after: .seconds(1)))
        let deadline = ContinuousClock.now + .seconds(5)
        while server.refusedConnections < 2 && ContinuousClock.now < deadline { usleep(10_000) }
        #expect(server.refusedConnections >= 2)
        // Still serving.
        let again = try client.request(Array("ok".utf8), to: server.address(id: 7), id: 3, epoch: 5, timeout: .seconds(5))
        #expect(String(decoding: again, as: UTF8.self) == "echo:ok")
        server.close()
        client.close()
        stranger.close()
    }

    @Test(arguments: [0, 1, 2, 16, 40])
    func aControlMessageChangedOnTheWayIsRefusedAndNeverHandled(_ offsetInMessage: Int) throws {
        // A relay in the middle flips one bit of the control frame (its head, number, payload
        // or tag) after an untouched handshake; a replayed frame is refused likewise.
        let server = try MemberNode(host: "127.0.0.1", credentials: credentials)
        server.memberID = 7
        let handled = EventCount()
        server.start { request in
            handled.add()
            request.reply([1])
        }
        defer { server.close() }
        let client = try MemberNode(host: "127.0.0.1", credentials: credentials)
        defer { client.close() }
        // The connector's handshake answer, then the intent byte, then the control frame.
        let answer = 6 + credentials.jobID.utf8.count + 76
        let relay = try TamperingRelay(to: server.port, tampering: .flipBit(offset: answer + 1 + offsetInMessage))
        defer { relay.stop() }
        let payload = Array("a membership decision".utf8)
        #expect(throws: (any Error).self) {
            try client.request(payload, to: MemberAddress(id: 7, host: "127.0.0.1", port: relay.port), id: 3, epoch: 5, timeout: .seconds(2))
        }
        let deadline = ContinuousClock.now + .seconds(3)
        while server.refusedConnections < 1 && ContinuousClock.now < deadline { usleep(10_000) }
        #expect(server.refusedConnections == 1)
        #expect(handled.value == 0, "a changed control message reached the handler")
        // The same request untouched is handled.
        #expect(try client.request(payload, to: server.address(id: 7), id: 3, epoch: 5, timeout: .seconds(2)) == [1])
        #expect(handled.value == 1)
    }

    @Test(arguments: [0, 1, 7, 48, 5000, 700_000])
    func keptConnectionsAreRealignedAfterAnInterruptedExchange(bytesBeforeInterrupt: Int) throws {
        // Three members in a ring; member 2 leaves; 0 and 1 keep the connection 0 → 1, which is
        // interrupted in the middle of a frame of 1 MiB (or before, or in its header).
        let nodes = try (0..<3).map { _ in try MemberNode(host: "127.0.0.1", credentials: credentials) }
        for (i, node) in nodes.enumerated() {
            node.memberID = i
            node.start { $0.close() }
        }
        let members = nodes.enumerated().map { $0.element.address(id: $0.offset) }
        let rings = RankThreads.run(count: 3) { rank in
            Result { try nodes[rank].buildRing(
                members: members, id: rank, epoch: 1, previous: nil, previousMembers: [], timeout: .seconds(10),
                interruption: Interruption(), abortHandler: { _ in }).0 }
        }
        let transports = try rings.map { try $0.get() }
        // Member 0 starts sending a 1 MiB frame to member 1 and stops after `bytesBeforeInterrupt`
        // bytes reached the socket; member 1 receives part of it.
        let payload = [UInt8](repeating: 0x5A, count: 1 << 20)
        let header = MessageHeader(epoch: 1, sequence: 9, kind: .allReduce, step: 0, totalCount: UInt64(payload.count / 4), payloadBytes: UInt64(payload.count))
        let frame = Wire.encode(.data, header) + payload
        if bytesBeforeInterrupt > 0, let right = transports[0].right {
            try right.writeAll(Array(frame.prefix(bytesBeforeInterrupt)), deadline: Deadline(after: .seconds(5)))
        }
        transports[0].outgoingRemainder = bytesBeforeInterrupt > 0 ? OutgoingRemainder(header: Array(frame.prefix(48)), sent: bytesBeforeInterrupt, total: frame.count) : nil
        if bytesBeforeInterrupt >= 48, let left = transports[1].left {
            let got = try left.readExactly(min(bytesBeforeInterrupt, 48 + 10), deadline: Deadline(after: .seconds(5)))
            transports[1].incomingRemainder = IncomingRemainder(header: Array(got.prefix(48)), headerCount: 48, payloadReceived: got.count - 48)
        }
        transports[2].close()
        let survivors = [members[0], members[1]]
        let rebuilt = RankThreads.run(count: 2) { rank in
            Result { try nodes[rank].buildRing(
                members: survivors, id: rank, epoch: 2, previous: transports[rank], previousMembers: members, timeout: .seconds(10),
                interruption: Interruption(), abortHandler: { _ in }) }
        }
        let (first, firstRebuild) = try rebuilt[0].get()
        let (second, secondRebuild) = try rebuilt[1].get()
        #expect(firstRebuild.keptRight && secondRebuild.keptLeft, "the unchanged connection 0 → 1 is kept")
        #expect(!firstRebuild.keptLeft && !secondRebuild.keptRight, "the new connection 1 → 0 is opened")
        // The new ring works: an all-reduce over it is exact.
        let sums = RankThreads.run(count: 2) { rank in
            Result { () -> [Float] in
                var values = [Float](repeating: Float(rank + 1), count: 100_003)
                try values.withUnsafeMutableBufferPointer { try RingCommunicator(transport: rank == 0 ? first : second, epoch: 2).allReduce($0, op: .sum) }
                return values
            }
        }
        for sum in sums { #expect(try sum.get().allSatisfy { $0 == 3 }) }
        nodes.forEach { $0.close() }
    }
}

/// A thread-safe counter.
final class EventCount: @unchecked Sendable {
    private let lock = NSLock()
    // Guarded by `lock`.
    private var count = 0
    func add() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
