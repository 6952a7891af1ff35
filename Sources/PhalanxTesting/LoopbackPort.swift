import Foundation

/// Free TCP ports on loopback, for jobs whose launcher needs a port number before anything
/// listens (mpirun's `-x PHALANX_MASTER_PORT=…`). Prefer port 0 wherever the listener itself
/// can report its port: a port found here may be taken again before it is used.
public enum LoopbackPort {
    /// A port on 127.0.0.1 that was free a moment ago.
    /// - Throws: `POSIXError` when no socket can be bound.
    public static func free() throws -> UInt16 {
        guard let fd = IPv4Socket.make(SOCK_STREAM) else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(fd) }
        return try IPv4Socket.bindLoopback(fd)
    }
}
