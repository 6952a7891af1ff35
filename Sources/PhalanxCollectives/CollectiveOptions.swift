/// Options of one collective call.
public struct CollectiveOptions: Sendable, Equatable {
    /// Which algorithm to run.
    public enum Algorithm: String, Sendable, Equatable {
        /// Reduce-scatter then all-gather around a ring: 2·(p−1)/p·N bytes per rank.
        case ring
    }

    /// The algorithm (backends that have their own, like MPI, may ignore it).
    public var algorithm: Algorithm
    /// The longest a call may go without progress (no byte sent or received) before it fails
    /// with `CollectiveError.Code.timeout`. Default 2 s.
    public var timeout: Duration
    /// The largest message the ring sends at once, in bytes; larger chunks are cut into
    /// segments, which bounds the scratch memory and lets reduction overlap the transfer.
    public var segmentBytes: Int

    /// `segmentBytes` in whole floats (at least one).
    var segmentElements: Int { Swift.max(1, segmentBytes / MemoryLayout<Float>.stride) }

    /// The defaults: ring, 2 s, 1 MiB segments.
    public static let `default` = CollectiveOptions()

    /// Makes options.
    public init(algorithm: Algorithm = .ring, timeout: Duration = .seconds(2), segmentBytes: Int = 1 << 20) {
        self.algorithm = algorithm
        self.timeout = timeout
        self.segmentBytes = Swift.max(segmentBytes, 64)
    }
}
