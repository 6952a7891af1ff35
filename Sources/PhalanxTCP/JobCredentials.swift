#if canImport(Glibc)
import Glibc
#endif
import Crypto
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
    /// `PHALANX_JOB_SECRET` or the file named by `PHALANX_JOB_SECRET_FILE` (owner-only: mode
    /// 600 or 400, owned by this user).
    ///
    /// Without a secret, a job whose `addresses` (every host this process listens on or
    /// reaches: the rendezvous, its own address, peers, witness) are all loopback uses the job
    /// id as its secret, with a warning: other jobs on this machine stay out, a deliberate local
    /// intruder does not. Any other address makes a missing secret an error.
    /// - Throws: `JobSecretError`.
    public static func fromEnvironment(_ variables: [String: String], addresses: [String],
                                       logger: Logger = Logger(label: "phalanx.tcp")) throws -> JobCredentials {
        let jobID = variables["PHALANX_JOB_ID"] ?? variables["TORCHELASTIC_RUN_ID"] ?? variables["SLURM_JOB_ID"]
            ?? variables["PMIX_NAMESPACE"] ?? "phalanx"
        if let secret = variables["PHALANX_JOB_SECRET"], !secret.isEmpty {
            return JobCredentials(jobID: jobID, secret: Array(secret.utf8))
        }
        if let path = variables["PHALANX_JOB_SECRET_FILE"], !path.isEmpty {
            return JobCredentials(jobID: jobID, secret: try readSecretFile(path))
        }
        if let outside = addresses.first(where: { !isLoopback($0) }) {
            throw JobSecretError.missing(jobID: jobID, address: outside)
        }
        logger.warning("no PHALANX_JOB_SECRET or PHALANX_JOB_SECRET_FILE: on loopback only, the job id '\(jobID)' serves as the secret")
        return JobCredentials(jobID: jobID, secret: Array(jobID.utf8))
    }

    /// The secret in the file at `path`, without trailing line ends, once the file is shown to
    /// be readable by its owner only and owned by this process's user.
    /// - Throws: `JobSecretError`.
    public static func readSecretFile(_ path: String) throws -> [UInt8] {
        var status = stat()
        guard stat(path, &status) == 0 else { throw JobSecretError.unreadableFile(path: path, reason: String(cString: strerror(errno))) }
        guard status.st_mode & 0o077 == 0, status.st_uid == geteuid() else {
            throw JobSecretError.exposedFile(path: path, mode: UInt32(status.st_mode), owner: UInt32(status.st_uid), user: UInt32(geteuid()))
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw JobSecretError.unreadableFile(path: path, reason: "cannot be read")
        }
        var bytes = [UInt8](data)
        while let last = bytes.last, last == 10 || last == 13 { bytes.removeLast() }
        guard !bytes.isEmpty else { throw JobSecretError.unreadableFile(path: path, reason: "the file is empty") }
        return bytes
    }

    /// Whether `host` is a loopback address: `localhost`, `::1`, or a name or address in
    /// 127.0.0.0/8. A name that does not resolve is not.
    public static func isLoopback(_ host: String) -> Bool {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if bare == "::1" || bare.lowercased() == "localhost" { return true }
        guard let address = try? Socket.resolve(bare, port: 0) else { return false }
        return UInt32(bigEndian: address.sin_addr.s_addr) >> 24 == 127
    }

    /// Credentials for the workers of incarnation `incarnation` of this job, derived with
    /// HKDF-SHA256 (hex-encoded, as launchers hand them over in the environment): node agents
    /// give their workers these instead of the job's own secret, so a worker's environment
    /// never holds the secret the agents share, and each incarnation's workers have their own.
    public func forWorkers(incarnation: Int) -> JobCredentials {
        let key = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: secret), salt: Array(jobID.utf8),
                                         info: Array("phalanx workers 1".utf8) + Wire.bytes(UInt64(bitPattern: Int64(incarnation))),
                                         outputByteCount: 32)
        return JobCredentials(jobID: jobID, secret: Array(key.withUnsafeBytes { Self.hex($0) }.utf8))
    }

    /// A fresh random secret of `byteCount` bytes, hex-encoded (what launchers hand their workers).
    public static func randomSecret(byteCount: Int = 32) -> String {
        var generator = SystemRandomNumberGenerator()
        return hex((0..<byteCount).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    /// Two lowercase hex digits per byte.
    private static func hex<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }
}
