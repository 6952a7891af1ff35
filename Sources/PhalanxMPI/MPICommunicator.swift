import CMPI
import PhalanxCollectives

/// Collectives through Open MPI's own algorithms (`MPI_Iallreduce` & co. on `MPI_COMM_WORLD`),
/// in place, with every wait bounded by `options.timeout` (total time of the call).
///
/// Before each call the ranks compare element counts with one small `MPI_Allreduce` (MPI itself
/// would hang or corrupt memory on a mismatch); `validatesCounts = false` skips it.
/// Open MPI 4.1 has no fault tolerance (no ULFM): after any error the communicator is closed and
/// the job should end; elastic training uses the TCP transport.
public final class MPICommunicator: Communicator {
    /// This rank in `MPI_COMM_WORLD`.
    public let rank: Int
    /// The size of `MPI_COMM_WORLD`.
    public let worldSize: Int
    /// Whether each call first checks that all ranks pass the same element count.
    public var validatesCounts: Bool
    /// The sequence number of the next call.
    public private(set) var sequence: UInt64 = 0
    private var failure: CollectiveError?
    private var bounds: [Int64] = [0, 0]
    private var reduceScatterScratch: [Float] = []

    /// Initialises MPI (if needed) and wraps `MPI_COMM_WORLD`.
    /// - Throws: `CollectiveError` with `.backendError`.
    public init(validatesCounts: Bool = true) throws {
        (rank, worldSize) = try MPIRuntime.initialize()
        self.validatesCounts = validatesCounts
    }

    /// All-reduces of at least this many bytes call Open MPI's blocking `MPI_Allreduce` on a
    /// helper thread, waited for with the deadline (faster than 4.1's nonblocking
    /// `MPI_Iallreduce` from 64 KiB up; docs/performance.md). Smaller ones use `MPI_Iallreduce`.
    public var blockingThresholdBytes = 64 << 10
    /// All-reduces of at least this many bytes go through the ring over MPI point-to-point
    /// (`MPITransport`), which measured faster than `MPI_Allreduce` from 64 MiB up (2 ranks).
    public var ringThresholdBytes = 48 << 20
    private let caller = DeadlineCaller()
    /// The smallest segment the ring over MPI uses (8 MiB).
    public var ringSegmentBytes = 8 << 20
    private lazy var ring: RingCommunicator? = (try? MPITransport()).map { RingCommunicator(transport: $0) }

    /// In-place all-reduce; `.average` divides the sum by the world size.
    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp, options: CollectiveOptions) throws {
        if buffer.count * MemoryLayout<Float>.stride >= ringThresholdBytes, worldSize > 1, let ring {
            // `run` refuses a failed communicator and makes the same count check as the other
            // paths: ranks on either side of the threshold must fail with sizeMismatch, not wait
            // for each other in different calls.
            try run(.allReduce, count: buffer.count, options: options, start: nil, blocking: nil)
            // MPI moves a message only when it completes, so segments buy no overlap here; large
            // ones let Open MPI use its single-copy shared-memory path.
            var ringOptions = options
            ringOptions.segmentBytes = Swift.max(options.segmentBytes, ringSegmentBytes)
            do { try ring.allReduce(buffer, op: op, options: ringOptions) } catch let error as CollectiveError {
                failure = error
                throw error
            }
            return
        }
        if buffer.count * MemoryLayout<Float>.stride >= blockingThresholdBytes, worldSize > 1, MPIRuntime.threadLevelAllowsHelper {
            // The caller waits (or fails the communicator for good) before the buffer goes away.
            let target = UncheckedPointer(pointer: buffer.baseAddress, count: buffer.count)
            try runBlocking(.allReduce, count: buffer.count, options: options) {
                MPI_Allreduce(phalanx_mpi_in_place(), target.pointer, Int32(target.count), phalanx_mpi_float(), Self.mpiOp(op), phalanx_mpi_comm_world())
            }
        } else {
            try run(.allReduce, count: buffer.count, options: options) { request in
                MPI_Iallreduce(phalanx_mpi_in_place(), buffer.baseAddress, Int32(buffer.count), phalanx_mpi_float(), Self.mpiOp(op), phalanx_mpi_comm_world(), &request)
            }
        }
        if op == .average, let base = buffer.baseAddress {
            let scale = 1 / Float(worldSize)
            for i in 0..<buffer.count { base[i] *= scale }
        }
    }

    /// `MPI_Ireduce_scatter` into this rank's chunk (`ChunkLayout`), in place.
    @discardableResult
    public func reduceScatter(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp, options: CollectiveOptions) throws -> Range<Int> {
        try checkCount(buffer.count, .reduceScatter)
        let layout = ChunkLayout(count: buffer.count, parts: worldSize)
        let own = layout.range(rank)
        var counts = (0..<worldSize).map { Int32(layout.range($0).count) }
        // Owned by the communicator: if the call times out, MPI may still write here later.
        if reduceScatterScratch.count < max(own.count, 1) { reduceScatterScratch = [Float](repeating: 0, count: max(own.count, 1)) }
        let scratchBase = reduceScatterScratch.withUnsafeMutableBufferPointer { $0.baseAddress }
        try run(.reduceScatter, count: buffer.count, options: options) { request in
            MPI_Ireduce_scatter(buffer.baseAddress, scratchBase, &counts, phalanx_mpi_float(), Self.mpiOp(op), phalanx_mpi_comm_world(), &request)
        }
        let scratch = reduceScatterScratch
        if let base = buffer.baseAddress {
            let scale: Float = op == .average ? 1 / Float(worldSize) : 1
            for (k, i) in own.enumerated() { base[i] = scratch[k] * scale }
        }
        return own
    }

    /// In-place `MPI_Iallgatherv` of the ranks' chunks (`ChunkLayout`).
    public func allGather(_ buffer: UnsafeMutableBufferPointer<Float>, options: CollectiveOptions) throws {
        try checkCount(buffer.count, .allGather)
        let layout = ChunkLayout(count: buffer.count, parts: worldSize)
        var counts = (0..<worldSize).map { Int32(layout.range($0).count) }
        var offsets = (0..<worldSize).map { Int32(layout.range($0).lowerBound) }
        try run(.allGather, count: buffer.count, options: options) { request in
            MPI_Iallgatherv(phalanx_mpi_in_place(), 0, phalanx_mpi_float(), buffer.baseAddress, &counts, &offsets, phalanx_mpi_float(), phalanx_mpi_comm_world(), &request)
        }
    }

    /// `MPI_Ibcast` from `root`.
    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, from root: Int, options: CollectiveOptions) throws {
        guard root >= 0, root < worldSize else {
            throw CollectiveError(.invalidArgument, operation: "broadcast", sequence: sequence, rank: rank, message: "root \(root) is outside 0..<\(worldSize)")
        }
        try run(.broadcast, count: buffer.count, options: options) { request in
            MPI_Ibcast(buffer.baseAddress, Int32(buffer.count), phalanx_mpi_float(), Int32(root), phalanx_mpi_comm_world(), &request)
        }
    }

    /// `MPI_Ibarrier`.
    public func barrier(options: CollectiveOptions) throws {
        try run(.barrier, count: 0, options: options) { request in MPI_Ibarrier(phalanx_mpi_comm_world(), &request) }
    }

    /// MPI counts are Int32.
    private func checkCount(_ count: Int, _ kind: CollectiveKind) throws {
        guard count <= Int(Int32.max) else {
            throw CollectiveError(.invalidArgument, operation: kind.description, sequence: sequence, rank: rank, message: "\(count) elements exceed MPI's Int32 counts")
        }
    }

    static func mpiOp(_ op: ReduceOp) -> MPI_Op {
        switch op {
        case .sum, .average: return phalanx_mpi_sum()
        case .min: return phalanx_mpi_min()
        case .max: return phalanx_mpi_max()
        }
    }

    /// Checks counts, then runs a blocking MPI call on the helper thread with a deadline.
    private func runBlocking(_ kind: CollectiveKind, count: Int, options: CollectiveOptions, _ call: @escaping @Sendable () -> Int32) throws {
        try run(kind, count: count, options: options, start: nil, blocking: call)
    }

    /// Checks counts, starts the nonblocking call and waits for it with a deadline.
    private func run(_ kind: CollectiveKind, count: Int, options: CollectiveOptions, _ start: (inout MPI_Request?) -> Int32) throws {
        try withoutActuallyEscaping(start) { escapable in
            try run(kind, count: count, options: options, start: escapable, blocking: nil)
        }
    }

    private func run(
        _ kind: CollectiveKind, count: Int, options: CollectiveOptions, start: ((inout MPI_Request?) -> Int32)?,
        blocking: (@Sendable () -> Int32)?
    ) throws {
        let context = (kind.description, sequence, rank)
        if let failure {
            throw CollectiveError(.closed, operation: kind.description, sequence: sequence, rank: rank, message: "the communicator failed earlier: \(failure)")
        }
        try checkCount(count, kind)
        sequence += 1
        do {
            if validatesCounts && kind != .barrier {
                // `bounds` belongs to the communicator: a timed-out MPI call may still write to it.
                bounds = [Int64(count), -Int64(count)]
                let boundsBase = bounds.withUnsafeMutableBufferPointer { $0.baseAddress }
                var request: MPI_Request? = phalanx_mpi_request_null()
                try MPIRuntime.check(
                    MPI_Iallreduce(phalanx_mpi_in_place(), boundsBase, 2, phalanx_mpi_int64(), phalanx_mpi_max(), phalanx_mpi_comm_world(), &request),
                    "MPI_Iallreduce", operation: context.0, sequence: context.1, rank: rank)
                var requests = [request]
                guard try MPIRequests.wait(&requests, timeout: options.timeout, context: context) else {
                    throw CollectiveError(.timeout, operation: context.0, sequence: context.1, rank: rank, message: "ranks did not all join within \(options.timeout)")
                }
                if bounds[0] != -bounds[1] {
                    throw CollectiveError(
                        .sizeMismatch, operation: context.0, sequence: context.1, rank: rank,
                        message: "ranks passed between \(-bounds[1]) and \(bounds[0]) elements (this rank \(count))")
                }
            }
            if let blocking {
                guard let code = caller.run(timeout: options.timeout, blocking) else {
                    throw CollectiveError(.timeout, operation: context.0, sequence: context.1, rank: rank, message: "MPI_\(kind) not complete within \(options.timeout)")
                }
                try MPIRuntime.check(code, "MPI_\(kind)", operation: context.0, sequence: context.1, rank: rank)
                return
            }
            guard let start else { return }
            var request: MPI_Request? = phalanx_mpi_request_null()
            try MPIRuntime.check(start(&request), "MPI_I\(kind)", operation: context.0, sequence: context.1, rank: rank)
            var requests = [request]
            guard try MPIRequests.wait(&requests, timeout: options.timeout, context: context) else {
                throw CollectiveError(.timeout, operation: context.0, sequence: context.1, rank: rank, message: "not complete within \(options.timeout)")
            }
        } catch let error as CollectiveError {
            failure = error
            throw error
        }
    }
}

/// A buffer address handed to the helper thread of `DeadlineCaller`.
struct UncheckedPointer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>?
    let count: Int
}
