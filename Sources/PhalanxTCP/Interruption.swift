#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Lets another thread stop a `TCPTransport` exchange at once (elastic mode): the exchange
/// polls a pipe besides its sockets, and throws `.peerAborted` with the reason given here.
///
/// Heartbeat and control threads trigger it when the membership must change; the training
/// thread resets it when the new ring is built.
public final class Interruption: @unchecked Sendable {
    private let lock = NSLock()
    private var state: (reason: String, peer: Int?)?
    /// The wake-up pipe, made once ([-1, -1] if it could not be).
    private let pipeDescriptors: [Int32]

    /// Makes an untriggered interruption with its wake-up pipe.
    public init() {
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            for fd in fds {
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK)
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            }
        } else {
            fds = [-1, -1]
        }
        pipeDescriptors = fds
    }

    deinit {
        for fd in pipeDescriptors where fd >= 0 { Glibc.close(fd) }
    }

    /// The descriptor an exchange polls for readability (-1 if the pipe could not be made:
    /// the exchange then notices at its next idle check instead).
    var wakeDescriptor: Int32 { pipeDescriptors[0] }

    /// The first reason given since the last `reset`, and the peer (ring position) it names.
    public var current: (reason: String, peer: Int?)? {
        lock.lock()
        defer { lock.unlock() }
        return state
    }

    /// Stops the running exchange, and every later one until `reset`. The first reason wins.
    public func trigger(_ reason: String, peer: Int? = nil) {
        lock.lock()
        defer { lock.unlock() }
        guard state == nil else { return }
        state = (reason, peer)
        if pipeDescriptors[1] >= 0 {
            var byte: UInt8 = 1
            _ = write(pipeDescriptors[1], &byte, 1)
        }
    }

    /// Clears the reason and drains the pipe (under the lock, so a trigger racing with the
    /// reset either stays set with its byte in the pipe, or is cleared with it).
    public func reset() {
        lock.lock()
        defer { lock.unlock() }
        state = nil
        guard pipeDescriptors[0] >= 0 else { return }
        var scratch = [UInt8](repeating: 0, count: 64)
        while read(pipeDescriptors[0], &scratch, scratch.count) > 0 {}
    }
}
