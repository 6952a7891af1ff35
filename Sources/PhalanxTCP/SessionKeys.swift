import Crypto
import Synchronization

/// The keys of one authenticated connection, one per direction, derived with HKDF-SHA256 from
/// the job secret and both handshake nonces: no two connections (nor the two directions of
/// one) share a key, and nothing recorded on one connection verifies on another.
///
///     HKDF-SHA256(ikm: secret, salt: nonceA | nonceC,
///                 info: "phalanx session 1" | purpose | jobID | connector rank | epoch | acceptor rank)
///       → 64 bytes: connector → acceptor key | acceptor → connector key
///
/// Each direction also counts the messages it protected, so that a receiver can refuse a
/// message that comes again (a replay) or out of order.
final class SessionKeys: Sendable {
    /// This side's sending key.
    let sending: SymmetricKey
    /// This side's receiving key.
    let receiving: SymmetricKey
    private let counters = Mutex((sent: UInt64(0), received: UInt64(0)))

    init(sending: SymmetricKey, receiving: SymmetricKey) {
        self.sending = sending
        self.receiving = receiving
    }

    /// Derives both directions' keys; `isConnector` says which side this is.
    static func derive(credentials: JobCredentials, purpose: Handshake.Purpose, nonceA: [UInt8], nonceC: [UInt8],
                       connectorRank: Int, epoch: UInt64, acceptorRank: Int, isConnector: Bool) -> SessionKeys {
        var info = Array("phalanx session 1".utf8) + [purpose.rawValue] + Array(credentials.jobID.utf8)
        info += Wire.bytes(UInt32(truncatingIfNeeded: connectorRank)) + Wire.bytes(epoch) + Wire.bytes(UInt32(truncatingIfNeeded: acceptorRank))
        let material = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: credentials.secret), salt: nonceA + nonceC, info: info,
                                              outputByteCount: 64)
        let bytes = material.withUnsafeBytes { Array($0) }
        let toAcceptor = SymmetricKey(data: bytes[0..<32]), toConnector = SymmetricKey(data: bytes[32..<64])
        return isConnector ? SessionKeys(sending: toAcceptor, receiving: toConnector) : SessionKeys(sending: toConnector, receiving: toAcceptor)
    }

    /// The number for the next message this side sends (1, 2, …).
    func nextSent() -> UInt64 {
        counters.withLock { state in
            state.sent += 1
            return state.sent
        }
    }

    /// Accepts `number` for a received message when it is newer than every one accepted
    /// before on this connection; false for a replayed or reordered message.
    func accept(received number: UInt64) -> Bool {
        counters.withLock { state in
            guard number > state.received else { return false }
            state.received = number
            return true
        }
    }
}

/// A message on an authenticated connection whose tag did not verify, or that came again.
public enum WireIntegrityError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The tag does not match: the bytes were changed, or were not sent by the peer.
    case forged(what: String, from: String)
    /// A message numbered no higher than one already received: a replay or a reordering.
    case replayed(what: String, from: String, number: UInt64)
    /// The connection has no session keys (it did not pass the handshake).
    case unauthenticated(from: String)

    /// A one-line message naming the remote address.
    public var description: String {
        switch self {
        case let .forged(what, from): return "refused a \(what) from \(from): its authentication tag does not verify (changed or injected on the way)"
        case let .replayed(what, from, number): return "refused a \(what) from \(from): number \(number) came before (a replay or a reordering)"
        case let .unauthenticated(from): return "refused \(from): the connection has no session keys"
        }
    }
}
