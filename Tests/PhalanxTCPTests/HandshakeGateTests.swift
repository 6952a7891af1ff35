import Foundation
@testable import PhalanxTCP
import PhalanxTesting
import Testing

/// The gate's limits, one at a time, with small limits so that each is reached.
@Suite struct HandshakeGateTests {
    final class Admitted: @unchecked Sendable {
        let lock = NSLock()
        var peers: [Int] = []
        var sockets: [Socket] = []
        func add(_ socket: Socket, _ peer: Handshake.Peer) {
            lock.lock()
            peers.append(peer.rank)
            sockets.append(socket)
            lock.unlock()
        }
        var count: Int { lock.lock(); defer { lock.unlock() }; return peers.count }
        /// The admitted ranks once there are `count` of them (the gate hands a connection over
        /// just after its answer left), or what there is after 5 s.
        func ranks(once count: Int) -> [Int] {
            let deadline = ContinuousClock.now + .seconds(5)
            while self.count < count, ContinuousClock.now < deadline { usleep(5_000) }
            lock.lock()
            defer { lock.unlock() }
            return peers
        }
    }

    static let credentials = JobCredentials(jobID: "gate", secret: Array("gate-secret".utf8))

    static func gate(_ limits: HandshakeGate.Limits = .init(), admit: (@Sendable (Handshake.Peer) -> Bool)? = nil) throws -> (HandshakeGate, UInt16, Admitted) {
        let listener = try Socket.listen(host: "127.0.0.1", port: 0)
        let admitted = Admitted()
        let gate = HandshakeGate(listener: listener, credentials: credentials, purpose: .ring, limits: limits,
                                 logger: .init(label: "test"), identity: { 0 }, admit: admit) { admitted.add($0, $1) }
        gate.start()
        return (gate, listener.localPort, admitted)
    }

    /// A real connector's handshake, as rank `rank`.
    static func connect(port: UInt16, rank: Int, credentials: JobCredentials = credentials) throws -> Int {
        let socket = try Socket.connect(host: "127.0.0.1", port: port, deadline: Deadline(after: .seconds(5)))
        defer { socket.close() }
        return try Handshake.connect(socket, credentials: credentials, purpose: .ring, rank: rank, epoch: 0, deadline: Deadline(after: .seconds(5)))
    }

    @Test func beyondTheLimitPerSourceTheOldestSilentConnectionsGoAndARealPeerGetsIn() throws {
        let (gate, port, admitted) = try Self.gate(.init(deadline: .seconds(30), maximumPending: 1000, maximumPerSource: 8))
        defer { gate.stop() }
        let flood = ConnectionFlood()
        defer { flood.close() }
        flood.open(host: "127.0.0.1", port: port, silent: 50, garbage: 0)
        #expect(try Self.connect(port: port, rank: 5) == 0)
        let deadline = ContinuousClock.now + .seconds(5)
        while admitted.count < 1 || gate.refusedConnections < 43, ContinuousClock.now < deadline { usleep(10_000) }
        #expect(admitted.ranks(once: 1) == [5])
        // 50 silent connections and one real one, 8 at most unfinished at once.
        #expect(gate.refusedConnections == 43)
    }

    @Test func theOverallLimitDropsTheOldestToo() throws {
        let (gate, port, admitted) = try Self.gate(.init(deadline: .seconds(30), maximumPending: 4, maximumPerSource: 100))
        defer { gate.stop() }
        let flood = ConnectionFlood()
        defer { flood.close() }
        flood.open(host: "127.0.0.1", port: port, silent: 20, garbage: 0)
        #expect(try Self.connect(port: port, rank: 2) == 0)
        #expect(admitted.ranks(once: 1) == [2])
    }

    @Test func silenceEndsAtTheDeadlineAndGarbageAndStrangersAtOnce() throws {
        let (gate, port, admitted) = try Self.gate(.init(deadline: .milliseconds(300), maximumPending: 100, maximumPerSource: 100))
        defer { gate.stop() }
        let flood = ConnectionFlood()
        defer { flood.close() }
        flood.open(host: "127.0.0.1", port: port, silent: 0, garbage: 10)
        #expect(throws: (any Error).self) { try Self.connect(port: port, rank: 1, credentials: JobCredentials(jobID: "gate", secret: Array("wrong".utf8))) }
        var deadline = ContinuousClock.now + .milliseconds(250)
        while gate.refusedConnections < 11, ContinuousClock.now < deadline { usleep(5_000) }
        #expect(gate.refusedConnections == 11, "garbage and the stranger are refused before any deadline")
        flood.open(host: "127.0.0.1", port: port, silent: 5, garbage: 0)
        deadline = ContinuousClock.now + .seconds(3)
        while gate.refusedConnections < 16, ContinuousClock.now < deadline { usleep(10_000) }
        #expect(gate.refusedConnections == 16)
        #expect(admitted.count == 0)
    }

    @Test func anAuthenticatedPeerThatIsNotAdmittedIsRefusedBeforeItIsAnswered() throws {
        let (gate, port, admitted) = try Self.gate(admit: { $0.rank == 3 })
        defer { gate.stop() }
        #expect(throws: (any Error).self) { try Self.connect(port: port, rank: 4) }
        #expect(try Self.connect(port: port, rank: 3) == 0)
        #expect(admitted.ranks(once: 1) == [3])
    }
}
