import Crypto
import Foundation
@testable import PhalanxTCP
import Testing

/// Sealing and opening frame bodies directly: sizes from empty to several segments, and a
/// changed byte anywhere, a replayed body or a swapped key refused.
@Suite struct WireProtectionTests {
    /// A sender's and a receiver's keys for one direction of one connection.
    static func pair() -> (SessionKeys, SessionKeys) {
        let credentials = JobCredentials(jobID: "wire", secret: Array("wire-secret".utf8))
        let nonceA = Handshake.nonce(), nonceC = Handshake.nonce()
        let connector = SessionKeys.derive(credentials: credentials, purpose: .ring, nonceA: nonceA, nonceC: nonceC, connectorRank: 0, epoch: 1,
                                           acceptorRank: 1, isConnector: true)
        let acceptor = SessionKeys.derive(credentials: credentials, purpose: .ring, nonceA: nonceA, nonceC: nonceC, connectorRank: 0, epoch: 1,
                                          acceptorRank: 1, isConnector: false)
        return (connector, acceptor)
    }

    /// The wire body of `payload` as the sender puts it out.
    static func body(_ mode: WireProtection, _ header: [UInt8], _ payload: [UInt8], _ keys: SessionKeys) throws -> [UInt8] {
        try payload.withUnsafeBytes { raw in
            let sealed = try SealedBody(mode: mode, header: header, payload: raw, keys: keys)
            return sealed.pieces(payload: raw, from: 0, limit: 10_000).flatMap { Array($0) }
        }
    }

    /// Feeds `wire` to a receiver in pieces of `step` bytes; returns the payload or the error.
    static func open(_ mode: WireProtection, _ header: [UInt8], _ wire: [UInt8], payload count: Int, _ keys: SessionKeys, step: Int = 7_777) throws -> [UInt8] {
        var opened = OpenedBody(mode: mode, header: header, payloadBytes: count, keys: keys, endpoint: "test")
        var incoming = [UInt8](repeating: 0, count: count)
        var offset = 0
        var verified = 0
        try incoming.withUnsafeMutableBytes { buffer in
            while !opened.isComplete {
                if let end = try opened.receive(into: buffer, { pointer, want in
                    let n = min(want, step, wire.count - offset)
                    wire.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress! + offset, byteCount: n) }
                    offset += n
                    return n
                }) { verified = end }
            }
        }
        #expect(verified == count && offset == wire.count)
        return incoming
    }

    @Test(arguments: [WireProtection.mac, .aead])
    func roundTripsOfEverySizeAndNothingChangedGoesUnnoticed(_ mode: WireProtection) throws {
        let header = Array(repeating: UInt8(7), count: 48)
        for count in [0, 1, 1000, WireProtection.segmentBytes, WireProtection.segmentBytes + 1, 3 * WireProtection.segmentBytes - 5] {
            let (send, receive) = Self.pair()
            let payload = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 5) }
            let wire = try Self.body(mode, header, payload, send)
            #expect(wire.count == mode.bodyBytes(payload: count))
            if mode == .aead, count > 64 { #expect(wire.prefix(64) != payload.prefix(64)[...], "aead leaves the payload readable") }
            #expect(try Self.open(mode, header, wire, payload: count, receive) == payload)
            // The same body again on that connection: its numbers were used.
            #expect { try Self.open(mode, header, wire, payload: count, receive) } throws: { error in
                if case .replayed = error as? WireIntegrityError { return true }
                return false
            }
        }
        // One flipped bit anywhere (segment, number or tag), or another header, is refused.
        let count = 2 * WireProtection.segmentBytes + 10
        let payload = (0..<count).map { UInt8(truncatingIfNeeded: $0) }
        for position in [0, 100, WireProtection.segmentBytes, WireProtection.segmentBytes + 3, WireProtection.segmentBytes + 20,
                         mode.bodyBytes(payload: count) - 1] {
            let (send, receive) = Self.pair()
            var wire = try Self.body(mode, header, payload, send)
            wire[position] ^= 0x10
            #expect(throws: WireIntegrityError.self) { try Self.open(mode, header, wire, payload: count, receive) }
        }
        let (send, receive) = Self.pair()
        let wire = try Self.body(mode, header, payload, send)
        #expect(throws: WireIntegrityError.self) { try Self.open(mode, Array(repeating: 8, count: 48), wire, payload: count, receive) }
        // The other direction's key does not open it.
        let (_, other) = Self.pair()
        #expect(throws: WireIntegrityError.self) { try Self.open(mode, header, wire, payload: count, other) }
    }

    @Test func theModeComesFromTheEnvironment() throws {
        #expect(try WireProtection.fromEnvironment([:]) == .none)
        #expect(try WireProtection.fromEnvironment(["PHALANX_WIRE_PROTECTION": " AEAD "]) == .aead)
        #expect(throws: SocketError.self) { try WireProtection.fromEnvironment(["PHALANX_WIRE_PROTECTION": "tls"]) }
    }
}
