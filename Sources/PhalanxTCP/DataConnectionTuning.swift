#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// How the ring's data connections are tuned: TCP_NODELAY, large kernel buffers and the
/// congestion control algorithm.
///
/// The congestion control matters on fast, short paths. Where the system default is BBR (as on
/// the development machine), a 2-rank loopback ring moved 16 MiB all-reduces at 3.4–3.9 GB/s of
/// bus bandwidth with BBR and 4.5–4.8 GB/s with CUBIC in alternating jobs (docs/performance.md):
/// BBR paces and keeps a small congestion window on a sub-millisecond path, so data waits for
/// acknowledgements, leaves from both CPUs and arrives reordered (spurious retransmissions).
/// The ring therefore asks for CUBIC, then Reno, on its own connections and leaves every other
/// socket of the process alone. `PHALANX_TCP_CONGESTION` overrides the preference: a
/// comma-separated list of names (`cubic,reno`, `bbr`), or `system` to keep the default.
public struct DataConnectionTuning: Sendable, Equatable {
    /// Requested send and receive buffer size in bytes (the kernel may cap it at
    /// `net.core.[rw]mem_max` unless the process has CAP_NET_ADMIN).
    public var bufferBytes: Int32
    /// Congestion control algorithms to try, in order; empty keeps the system's default.
    public var congestionControl: [String]

    /// Makes a tuning.
    public init(bufferBytes: Int32 = 4 << 20, congestionControl: [String] = ["cubic", "reno"]) {
        self.bufferBytes = bufferBytes
        self.congestionControl = congestionControl
    }

    /// The tuning `PHALANX_TCP_CONGESTION` asks for (the default when it is unset or empty).
    public static func fromEnvironment(_ variables: [String: String]) -> DataConnectionTuning {
        var tuning = DataConnectionTuning()
        if let value = variables["PHALANX_TCP_CONGESTION"]?.trimmingCharacters(in: .whitespaces), !value.isEmpty {
            let names = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            tuning.congestionControl = names == ["system"] ? [] : names
        }
        return tuning
    }

    /// The tuning of this process, read once from its environment.
    public static let current = fromEnvironment(ProcessInfo.processInfo.environment)

    /// Applies the tuning to a connected TCP socket; returns the congestion control algorithm in
    /// effect afterwards (nil if it cannot be read). Failures leave the system's settings.
    @discardableResult
    public func apply(to descriptor: Int32) -> String? {
        var one: Int32 = 1
        _ = setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var size = bufferBytes
        // The *FORCE variants pass the system maximum when the process may (CAP_NET_ADMIN);
        // otherwise the plain ones take what is allowed.
        if setsockopt(descriptor, SOL_SOCKET, SO_SNDBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            _ = setsockopt(descriptor, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        if setsockopt(descriptor, SOL_SOCKET, SO_RCVBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        // Unknown or not permitted (net.ipv4.tcp_allowed_congestion_control) names fail: try the next.
        for name in congestionControl {
            let accepted = name.withCString { setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_CONGESTION, $0, socklen_t(strlen($0))) == 0 }
            if accepted { break }
        }
        return Self.congestionControl(of: descriptor)
    }

    /// The congestion control algorithm of a TCP socket.
    public static func congestionControl(of descriptor: Int32) -> String? {
        var name = [CChar](repeating: 0, count: 32)
        var length = socklen_t(name.count)
        guard getsockopt(descriptor, Int32(IPPROTO_TCP), TCP_CONGESTION, &name, &length) == 0 else { return nil }
        return String(decoding: name.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
