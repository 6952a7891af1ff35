import CMPI
import PhalanxCollectives

/// Initialises and finalises Open MPI for this process (once each), with errors returned as
/// codes (`MPI_ERRORS_RETURN`) instead of aborting the job.
public enum MPIRuntime {
    /// Whether MPI granted `MPI_THREAD_SERIALIZED`, which the helper-thread `MPI_Allreduce`
    /// path needs (set by `initialize`; false when another library initialised MPI).
    nonisolated(unsafe) static var threadLevelAllowsHelper = false

    /// Whether a thread other than the one that initialised MPI may call it (one at a time):
    /// MPI granted `MPI_THREAD_SERIALIZED` or more. A communication thread (the trainers'
    /// overlapped all-reduce) needs it.
    public static var allowsOtherThreads: Bool { threadLevelAllowsHelper }

    /// Initialises MPI if needed (`MPI_THREAD_SERIALIZED`: one thread in MPI at a time, not
    /// always the same one) and returns `(rank, size)` in `MPI_COMM_WORLD`.
    /// - Throws: `CollectiveError.Code.backendError` with MPI's message.
    public static func initialize() throws -> (rank: Int, size: Int) {
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        if initialized == 0 {
            var provided: Int32 = 0
            try check(MPI_Init_thread(nil, nil, Int32(MPI_THREAD_SERIALIZED), &provided), "MPI_Init_thread")
            threadLevelAllowsHelper = provided >= Int32(MPI_THREAD_SERIALIZED)
        } else {
            var provided: Int32 = 0
            MPI_Query_thread(&provided)
            threadLevelAllowsHelper = provided >= Int32(MPI_THREAD_SERIALIZED)
        }
        try check(MPI_Comm_set_errhandler(phalanx_mpi_comm_world(), phalanx_mpi_errors_return()), "MPI_Comm_set_errhandler")
        var rank: Int32 = 0, size: Int32 = 0
        try check(MPI_Comm_rank(phalanx_mpi_comm_world(), &rank), "MPI_Comm_rank")
        try check(MPI_Comm_size(phalanx_mpi_comm_world(), &size), "MPI_Comm_size")
        return (Int(rank), Int(size))
    }

    /// Finalises MPI if it was initialised and not yet finalised.
    public static func finalize() {
        var initialized: Int32 = 0, finalized: Int32 = 0
        MPI_Initialized(&initialized)
        MPI_Finalized(&finalized)
        if initialized != 0 && finalized == 0 { MPI_Finalize() }
    }

    /// MPI's text for an error code.
    public static func message(_ code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: Int(phalanx_mpi_max_error_string()) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &buffer, &length)
        return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func check(_ code: Int32, _ call: String, operation: String = "init", sequence: UInt64 = 0, rank: Int = -1) throws {
        guard code != phalanx_mpi_success() else { return }
        throw CollectiveError(.backendError, operation: operation, sequence: sequence, rank: rank, message: "\(call): \(message(code))")
    }
}
