/// The mutual challenge–response every TCP connection starts with.
///
///     acceptor → connector : "PHXH" version(1) purpose(1) nonceA(32)
///     connector → acceptor : "PHXC" jobIDLength(2) jobID rank(4) epoch(8) nonceC(32) macC(32)
///                            macC = HMAC(secret, "connect" | purpose | jobID | rank | epoch | nonceA | nonceC)
///     acceptor → connector : "PHXA" rank(4) macA(32)
///                            macA = HMAC(secret, "accept" | purpose | jobID | rank_A | epoch | nonceC | nonceA)
///
/// Each side proves it knows the secret for this job, purpose and epoch without sending it; the
/// nonces make recorded handshakes useless. Both sides then hold the connection's
/// `SessionKeys`, which protect every message after the handshake. Anything else — wrong magic, wrong job, wrong MAC,
/// too slow — ends the connection with `HandshakeError`.
enum Handshake {
    static let version: UInt8 = 1

    enum Purpose: UInt8 {
        case rendezvous = 1
        case ring = 2
        /// A connection to an elastic member's listener; the connector names its intent next.
        case member = 3
    }

    struct Peer {
        let rank: Int
        let epoch: UInt64
    }

    static func nonce() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    static func mac(_ credentials: JobCredentials, _ label: String, _ purpose: Purpose, rank: Int, epoch: UInt64, _ first: [UInt8], _ second: [UInt8]) -> [UInt8] {
        var message = Array(label.utf8) + [purpose.rawValue] + Array(credentials.jobID.utf8)
        message += Wire.bytes(UInt32(truncatingIfNeeded: rank)) + Wire.bytes(epoch) + first + second
        return MessageAuthentication.hmacSHA256(key: credentials.secret, message: message)
    }

    /// The acceptor's opening words: "PHXH" version purpose nonceA.
    static func hello(purpose: Purpose, nonce: [UInt8]) -> [UInt8] {
        Array("PHXH".utf8) + [version, purpose.rawValue] + nonce
    }

    /// The connector's message is 6 bytes of head, then the job id and 76 bytes.
    static let connectorHeadSize = 6

    /// The whole length of the connector's message whose head is `head` (its first 6 bytes).
    /// - Throws: `HandshakeError.garbage` when the head is not a Phalanx handshake's.
    static func connectorMessageLength(head: ArraySlice<UInt8>, from endpoint: String) throws -> Int {
        guard head.count >= connectorHeadSize, Array(head.prefix(4)) == Array("PHXC".utf8) else { throw HandshakeError.garbage(from: endpoint) }
        let start = head.startIndex
        let idLength = Int(head[start + 4]) << 8 | Int(head[start + 5])
        guard idLength <= 1024 else { throw HandshakeError.garbage(from: endpoint) }
        return connectorHeadSize + idLength + 4 + 8 + 32 + 32
    }

    /// Checks the connector's complete `message` against `nonceA` and returns who it is, the
    /// acceptor's reply and the connection's keys. (`HandshakeGate` runs this for every accepted
    /// connection; it may still refuse an authenticated peer before sending the reply.)
    /// - Throws: `HandshakeError`.
    static func answer(
        _ message: [UInt8], nonceA: [UInt8], credentials: JobCredentials, purpose: Purpose, rank: Int, from endpoint: String
    ) throws -> (peer: Peer, reply: [UInt8], keys: SessionKeys) {
        let idLength = try connectorMessageLength(head: message[...], from: endpoint) - connectorHeadSize - 76
        guard message.count == connectorHeadSize + idLength + 76 else { throw HandshakeError.garbage(from: endpoint) }
        let body = Array(message[connectorHeadSize...])
        let jobID = String(decoding: body[0..<idLength], as: UTF8.self)
        let peerRank = Int(Wire.uint32(body, at: idLength))
        let peerEpoch = Wire.uint64(body, at: idLength + 4)
        let nonceC = Array(body[(idLength + 12)..<(idLength + 44)])
        let macC = Array(body[(idLength + 44)..<(idLength + 76)])
        guard jobID == credentials.jobID else { throw HandshakeError.wrongJob(from: endpoint, jobID: jobID) }
        let expected = mac(credentials, "connect", purpose, rank: peerRank, epoch: peerEpoch, nonceA, nonceC)
        guard MessageAuthentication.constantTimeEqual(expected, macC) else { throw HandshakeError.badSecret(from: endpoint, rank: peerRank) }
        let macA = mac(credentials, "accept", purpose, rank: rank, epoch: peerEpoch, nonceC, nonceA)
        let keys = SessionKeys.derive(credentials: credentials, purpose: purpose, nonceA: nonceA, nonceC: nonceC, connectorRank: peerRank,
                                      epoch: peerEpoch, acceptorRank: rank, isConnector: false)
        return (Peer(rank: peerRank, epoch: peerEpoch), Array("PHXA".utf8) + Wire.bytes(UInt32(truncatingIfNeeded: rank)) + macA, keys)
    }

    /// The connector's side. Returns the authenticated acceptor's rank.
    static func connect(_ socket: Socket, credentials: JobCredentials, purpose: Purpose, rank: Int, epoch: UInt64, deadline: Deadline) throws -> Int {
        let hello = try socket.readExactly(38, deadline: deadline)
        guard Array(hello[0..<4]) == Array("PHXH".utf8), hello[4] == version, hello[5] == purpose.rawValue else {
            throw HandshakeError.garbage(from: socket.endpoint)
        }
        let nonceA = Array(hello[6..<38])
        let nonceC = nonce()
        let id = Array(credentials.jobID.utf8)
        var message = Array("PHXC".utf8) + [UInt8(truncatingIfNeeded: id.count >> 8), UInt8(truncatingIfNeeded: id.count)] + id
        message += Wire.bytes(UInt32(truncatingIfNeeded: rank)) + Wire.bytes(epoch) + nonceC
        message += mac(credentials, "connect", purpose, rank: rank, epoch: epoch, nonceA, nonceC)
        try socket.writeAll(message, deadline: deadline)
        let reply = try socket.readExactly(40, deadline: deadline)
        guard Array(reply[0..<4]) == Array("PHXA".utf8) else { throw HandshakeError.garbage(from: socket.endpoint) }
        let acceptorRank = Int(Wire.uint32(reply, at: 4))
        let expected = mac(credentials, "accept", purpose, rank: acceptorRank, epoch: epoch, nonceC, nonceA)
        guard MessageAuthentication.constantTimeEqual(expected, Array(reply[8..<40])) else {
            throw HandshakeError.badSecret(from: socket.endpoint, rank: acceptorRank)
        }
        socket.session = SessionKeys.derive(credentials: credentials, purpose: purpose, nonceA: nonceA, nonceC: nonceC, connectorRank: rank,
                                            epoch: epoch, acceptorRank: acceptorRank, isConnector: true)
        return acceptorRank
    }
}

/// Why a connection was refused during the handshake.
public enum HandshakeError: Error, CustomStringConvertible, Equatable {
    /// The bytes were not a Phalanx handshake.
    case garbage(from: String)
    /// The peer named another job.
    case wrongJob(from: String, jobID: String)
    /// The peer's MAC did not verify: it does not know the secret.
    case badSecret(from: String, rank: Int)
    /// The peer knows the secret but is not the rank (or epoch) expected on this connection.
    case unexpectedPeer(from: String, rank: Int, epoch: UInt64)

    /// A one-line message naming the remote address.
    public var description: String {
        switch self {
        case let .garbage(from): return "refused \(from): not a Phalanx handshake"
        case let .wrongJob(from, jobID): return "refused \(from): it belongs to job '\(jobID)'"
        case let .badSecret(from, rank): return "refused \(from) (claims rank \(rank)): it does not know the job secret"
        case let .unexpectedPeer(from, rank, epoch): return "refused \(from): rank \(rank) of epoch \(epoch) is not the peer expected here"
        }
    }
}
