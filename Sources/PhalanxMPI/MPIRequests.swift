import CMPI
import PhalanxCollectives

#if canImport(Glibc)
import Glibc
#endif

/// Waits for MPI requests by polling `MPI_Testall` until they complete or a deadline passes:
/// MPI's own waits have no deadline.
enum MPIRequests {
    /// - Returns: false when `timeout` passed first (the requests are then still pending).
    /// - Throws: `CollectiveError` with `.backendError` if MPI reports an error.
    static func wait(_ requests: inout [MPI_Request?], timeout: Duration, context: (String, UInt64, Int)) throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        var spins = 0
        while true {
            var done: Int32 = 0
            let code = MPI_Testall(Int32(requests.count), &requests, &done, nil)
            try MPIRuntime.check(code, "MPI_Testall", operation: context.0, sequence: context.1, rank: context.2)
            if done != 0 { return true }
            spins += 1
            if spins % 1024 == 0 {
                if ContinuousClock.now >= deadline { return false }
                sched_yield()
            }
        }
    }
}
