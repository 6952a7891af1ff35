import Crypto

/// HMAC-SHA256 from swift-crypto (BoringSSL on Linux, CryptoKit on Apple platforms) and a
/// constant-time comparison of (possibly truncated) tags.
enum MessageAuthentication {
    /// The 32-byte HMAC-SHA256 of `message` under `key`.
    static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }

    /// Compares without an early exit, so timing does not reveal how many bytes matched.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }
}
