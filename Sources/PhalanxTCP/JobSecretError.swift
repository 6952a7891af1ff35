/// Why a process has no usable job secret.
public enum JobSecretError: Error, CustomStringConvertible, Equatable, Sendable {
    /// No secret was given and the job reaches beyond this machine's loopback interface.
    case missing(jobID: String, address: String)
    /// `PHALANX_JOB_SECRET_FILE` names a file that cannot be read, or an empty one.
    case unreadableFile(path: String, reason: String)
    /// `PHALANX_JOB_SECRET_FILE` can be read or written by users other than its owner, or
    /// belongs to another user.
    case exposedFile(path: String, mode: UInt32, owner: UInt32, user: UInt32)

    /// A one-line message that says how to fix it.
    public var description: String {
        switch self {
        case let .missing(jobID, address):
            return "job '\(jobID)' uses \(address), which is not a loopback address, and has no secret: anyone who reaches its ports and "
                + "guesses the job id could join it. Give every process the same secret: umask 077; head -c 32 /dev/urandom | xxd -p -c 64 > "
                + "secret; PHALANX_JOB_SECRET_FILE=$PWD/secret (or PHALANX_JOB_SECRET=…); docs/security.md"
        case let .unreadableFile(path, reason):
            return "PHALANX_JOB_SECRET_FILE \(path): \(reason)"
        case let .exposedFile(path, mode, owner, user):
            if owner != user { return "PHALANX_JOB_SECRET_FILE \(path) belongs to user \(owner), not to this user (\(user)): copy it and chmod 600 the copy" }
            return "PHALANX_JOB_SECRET_FILE \(path) has mode \(String(mode & 0o777, radix: 8)): other users may read it; chmod 600 \(path)"
        }
    }
}
