import Crypto
import Foundation

/// Authenticates and numbers one job's datagrams (heartbeats and alerts), which have no
/// connection and so no session keys:
///
///     key    = HKDF-SHA256(secret, salt: jobID, info: "phalanx datagram 1" | purpose)
///     tag    = HMAC-SHA256(key, datagram without its tag)[0..<16]
///     number = the sender's clock in microseconds, made strictly increasing
///
/// A receiver takes a datagram only when its number is above every one it took from that
/// sender: a captured datagram replayed later is refused, and so is a stale one that arrives
/// after a newer one. Numbers are compared per sender only, never with the receiver's clock, so
/// clocks that disagree between hosts do no harm. (A datagram captured from an earlier process
/// that had the same member id could be taken once, before the current one's first datagram
/// arrives; receivers also check the epoch, which limits it further.)
public final class DatagramGuard: @unchecked Sendable {
    /// Length of a tag.
    public static let tagSize = 16
    private let key: SymmetricKey
    // Guarded by `lock`: the last number sent, the newest taken from each sender, the count refused.
    private let lock = NSLock()
    private var lastSent: UInt64 = 0
    private var newest: [Int: UInt64] = [:]
    private var refused = 0

    /// A guard for `credentials`' datagrams of one `purpose` (keys differ by purpose).
    public init(credentials: JobCredentials, purpose: String) {
        key = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: credentials.secret), salt: Array(credentials.jobID.utf8),
                                     info: Array("phalanx datagram 1".utf8) + Array(purpose.utf8), outputByteCount: 32)
    }

    /// Microseconds since 1970 by the wall clock (numbers must grow across processes too).
    static func clockMicroseconds() -> UInt64 { UInt64(max(0, Date().timeIntervalSince1970 * 1_000_000)) }

    /// The number for the next datagram this process sends.
    public func nextNumber() -> UInt64 {
        lock.lock()
        defer { lock.unlock() }
        lastSent = max(lastSent + 1, Self.clockMicroseconds())
        return lastSent
    }

    /// The tag of `body` (everything the datagram carries before the tag).
    public func tag(_ body: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: body, using: key).prefix(Self.tagSize))
    }

    /// Whether `tag` is `body`'s (in constant time).
    public func verify(tag: [UInt8], of body: [UInt8]) -> Bool {
        MessageAuthentication.constantTimeEqual(self.tag(body), tag)
    }

    /// Takes `number` from `sender` if it is newer than every number taken from it; false (and
    /// counted) otherwise.
    public func accept(number: UInt64, from sender: Int) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard number > (newest[sender] ?? 0) else {
            refused += 1
            return false
        }
        newest[sender] = number
        return true
    }

    /// Authentic datagrams refused because their number was not new (replays, reorderings).
    public var replaysRefused: Int {
        lock.lock()
        defer { lock.unlock() }
        return refused
    }
}
