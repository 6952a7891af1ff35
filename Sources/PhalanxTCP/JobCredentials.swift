import Foundation
import Logging

/// What a process must know to join a job: the job id and the job secret. Every connection
/// (rendezvous and ring) proves knowledge of both with HMAC-SHA256 over fresh nonces; the secret
/// itself never crosses the network.
public struct JobCredentials: Sendable, Equatable {
    /// Names the job; peers of another job are refused even if they share a secret.
    public var jobID: String
    /// The shared secret (any bytes).
    public var secret: [UInt8]

    /// Makes credentials.
    public init(jobID: String, secret: [UInt8]) {
        self.jobID = jobID
        self.secret = secret
    }

    /// Reads the job id from `PHALANX_JOB_ID` (else torchrun's `TORCHELASTIC_RUN_ID`, Slurm's
    /// `SLURM_JOB_ID`, PMIx's `PMIX_NAMESPACE`, else "phalanx") and the secret from
    /// `PHALANX_JOB_SECRET` or the file named by `PHALANX_JOB_SECRET_FILE`. Without a secret the
    /// job id serves as one and a warning is logged: that keeps other jobs out but not a
    /// deliberate intruder.
    /// - Throws: `SocketError` if the secret file cannot be read or is empty.
    public static func fromEnvironment(_ variables: [String: String], logger: Logger = Logger(label: "phalanx.tcp")) throws -> JobCredentials {
        let jobID = variables["PHALANX_JOB_ID"] ?? variables["TORCHELASTIC_RUN_ID"] ?? variables["SLURM_JOB_ID"]
            ?? variables["PMIX_NAMESPACE"] ?? "phalanx"
        if let secret = variables["PHALANX_JOB_SECRET"], !secret.isEmpty {
            return JobCredentials(jobID: jobID, secret: Array(secret.utf8))
        }
        if let path = variables["PHALANX_JOB_SECRET_FILE"] {
            guard let data = FileManager.default.contents(atPath: path), !data.isEmpty else {
                throw SocketError("read secret", endpoint: path, reason: "PHALANX_JOB_SECRET_FILE is missing, unreadable or empty")
            }
            var bytes = [UInt8](data)
            while let last = bytes.last, last == 10 || last == 13 { bytes.removeLast() }
            return JobCredentials(jobID: jobID, secret: bytes)
        }
        logger.warning("no PHALANX_JOB_SECRET or PHALANX_JOB_SECRET_FILE: using the job id '\(jobID)' as the secret")
        return JobCredentials(jobID: jobID, secret: Array(jobID.utf8))
    }

    /// A tag that proves `message` came from a holder of these credentials:
    /// HMAC-SHA256(secret, jobID | message), its first `length` bytes.
    public func tag(_ message: [UInt8], length: Int = 16) -> [UInt8] {
        Array(MessageAuthentication.hmacSHA256(key: secret, message: Array(jobID.utf8) + message).prefix(length))
    }

    /// Whether `tag` is `message`'s tag (compared in constant time).
    public func verify(tag: [UInt8], of message: [UInt8]) -> Bool {
        guard tag.count >= 8, tag.count <= 32 else { return false }
        return MessageAuthentication.constantTimeEqual(self.tag(message, length: tag.count), tag)
    }

    /// A fresh random secret of `byteCount` bytes, hex-encoded (what launchers hand their workers).
    public static func randomSecret(byteCount: Int = 32) -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<byteCount).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }
}
