import CMPI
import PhalanxCollectives

/// MPI point-to-point as a `Transport`, so that the generic ring (`RingCommunicator`) runs over
/// MPI too: each message is a 6-word header and the payload, sent with `MPI_Isend` to the right
/// neighbour while `MPI_Irecv` receives from the left, both straight from/into the caller's memory.
public final class MPITransport: Transport {
    /// This rank in `MPI_COMM_WORLD`.
    public let rank: Int
    /// The size of `MPI_COMM_WORLD`.
    public let worldSize: Int
    private var aborted: CollectiveError?
    /// The abort report being sent (kept alive while MPI may still read it).
    private var abortWords: [UInt64] = []
    private var sendWords: [UInt64] = [0, 0, 0, 0, 0, 0]
    private var receiveWords: [UInt64] = [0, 0, 0, 0, 0, 0]
    private static let headerTag: Int32 = 0x5048
    private static let payloadTag: Int32 = 0x5049

    /// Initialises MPI (if needed).
    /// - Throws: `CollectiveError` with `.backendError`.
    public init() throws {
        (rank, worldSize) = try MPIRuntime.initialize()
    }

    private static func words(_ h: MessageHeader) -> [UInt64] {
        [h.epoch, h.sequence, UInt64(h.kind.rawValue), UInt64(h.step), h.totalCount, h.payloadBytes]
    }

    /// One exchange with the neighbours (see `Transport.exchange`); `progress` is called once,
    /// when the whole payload has arrived.
    public func exchange(
        send header: MessageHeader?, _ outgoing: UnsafeRawBufferPointer,
        receive expected: MessageHeader?, into incoming: UnsafeMutableRawBufferPointer,
        timeout: Duration, progress: (Int) throws -> Void
    ) throws {
        let context = header ?? expected
        let operation = context?.kind.description ?? "exchange", sequence = context?.sequence ?? 0
        if let aborted {
            throw CollectiveError(.closed, operation: operation, sequence: sequence, rank: rank, message: "transport aborted: \(aborted.message)")
        }
        let right = Int32((rank + 1) % worldSize), left = Int32((rank - 1 + worldSize) % worldSize)
        let world = phalanx_mpi_comm_world()
        // Header words live in the transport, not on the stack: a request that outlives a failed
        // call (MPI cannot always cancel a matched send) must not point at freed memory.
        sendWords = header.map(Self.words) ?? [0, 0, 0, 0, 0, 0]
        receiveWords = [UInt64](repeating: 0, count: 6)
        let sendBase = sendWords.withUnsafeMutableBufferPointer { $0.baseAddress }
        let receiveBase = receiveWords.withUnsafeMutableBufferPointer { $0.baseAddress }
        var requests: [MPI_Request?] = []
        func start(_ call: String, _ body: (inout MPI_Request?) -> Int32) throws {
            var request: MPI_Request? = phalanx_mpi_request_null()
            try MPIRuntime.check(body(&request), call, operation: operation, sequence: sequence, rank: rank)
            requests.append(request)
        }
        // Post receives first so that eager sends land directly.
        if expected != nil {
            try start("MPI_Irecv") { MPI_Irecv(receiveBase, 6, phalanx_mpi_int64(), left, Self.headerTag, world, &$0) }
            try start("MPI_Irecv") { MPI_Irecv(incoming.baseAddress, Int32(incoming.count), phalanx_mpi_byte(), left, Self.payloadTag, world, &$0) }
        }
        if header != nil {
            try start("MPI_Isend") { MPI_Isend(sendBase, 6, phalanx_mpi_int64(), right, Self.headerTag, world, &$0) }
            try start("MPI_Isend") { MPI_Isend(UnsafeMutableRawPointer(mutating: outgoing.baseAddress), Int32(outgoing.count), phalanx_mpi_byte(), right, Self.payloadTag, world, &$0) }
        }
        let peer = Int(left)
        do {
            try complete(&requests, expected: expected, peer: peer, left: left, right: right, operation: operation, sequence: sequence, timeout: timeout)
        } catch {
            // Nothing may land in the caller's buffer after the call has returned.
            Self.cancel(&requests)
            throw error
        }
        if let expected {
            guard receiveWords == Self.words(expected) else {
                throw CollectiveError(.protocolViolation, operation: operation, sequence: sequence, rank: rank, peer: peer, message: "stale or foreign frame \(receiveWords)")
            }
            try progress(incoming.count)
        }
    }

    /// Cancels and frees every pending request.
    private static func cancel(_ requests: inout [MPI_Request?]) {
        for i in requests.indices where requests[i] != phalanx_mpi_request_null() {
            MPI_Cancel(&requests[i])
            MPI_Request_free(&requests[i])
        }
    }

    /// Waits for the header (checking it), then for everything, with the deadline.
    private func complete(
        _ requests: inout [MPI_Request?], expected: MessageHeader?, peer: Int, left: Int32, right: Int32,
        operation: String, sequence: UInt64, timeout: Duration
    ) throws {
        if expected != nil {
            // The header first: it may be an abort report, or announce a different element count.
            var headerRequest = [requests[0]]
            guard try MPIRequests.wait(&headerRequest, timeout: timeout, context: (operation, sequence, rank)) else {
                throw CollectiveError(.timeout, operation: operation, sequence: sequence, rank: rank, peer: peer, message: "no message from rank \(left) within \(timeout)")
            }
            requests[0] = headerRequest[0]
            if receiveWords[2] == 0 {
                throw CollectiveError(
                    .peerAborted, operation: operation, sequence: sequence, rank: rank, peer: Int(receiveWords[4]),
                    message: "rank \(receiveWords[3]) reported a failure with rank \(receiveWords[4]) (see its log)")
            }
            if let expected, receiveWords[4] != expected.totalCount {
                throw CollectiveError(
                    .sizeMismatch, operation: operation, sequence: sequence, rank: rank, peer: peer,
                    message: "rank \(left) called \(expected.kind) with \(receiveWords[4]) elements, this rank with \(expected.totalCount)")
            }
        }
        guard try MPIRequests.wait(&requests, timeout: timeout, context: (operation, sequence, rank)) else {
            throw CollectiveError(.timeout, operation: operation, sequence: sequence, rank: rank, peer: peer, message: "exchange with rank \(left) and rank \(right) not complete within \(timeout)")
        }
    }

    /// Sends an abort report (a header of kind 0) to the right neighbour without waiting for it;
    /// the report travels on round the ring as each rank fails in turn. Ranks whose left
    /// neighbour is still healthy fail by their own deadlines.
    public func abort(_ error: CollectiveError) {
        guard aborted == nil else { return }
        aborted = error
        guard worldSize > 1 else { return }
        abortWords = [0, error.sequence, 0, UInt64(rank), UInt64(error.peer ?? rank), 0]
        var request: MPI_Request? = phalanx_mpi_request_null()
        _ = MPI_Isend(&abortWords, 6, phalanx_mpi_int64(), Int32((rank + 1) % worldSize), Self.headerTag, phalanx_mpi_comm_world(), &request)
    }
}
