import Foundation

/// When the trainers overlap the gradient all-reduce with backward (`--overlap`).
///
/// Overlap moves the all-reduce onto a communication thread; it gains only where that thread
/// finds a core that compute leaves idle. Measured on 2 vCPUs with 2 and 4 ranks (one BLAS
/// thread each, so no idle core), it lost 3–12 % (docs/performance.md, "Convolution and
/// attention models"), so `auto` asks for a free core per local rank and gradients that fill
/// more than one bucket (with one bucket nothing overlaps: it is whole only after backward).
struct OverlapPolicy {
    /// on, off or auto.
    let mode: String
    /// Elements per bucket.
    let bucketElements: Int

    /// Processes of the job on this host: `PHALANX_LOCAL_WORLD_SIZE` (phalanx-run),
    /// `LOCAL_WORLD_SIZE` (torchrun), `OMPI_COMM_WORLD_LOCAL_SIZE` (mpirun),
    /// `SLURM_NTASKS_PER_NODE`; else all `worldSize` members are assumed to share it.
    static func localRanks(worldSize: Int, environment: [String: String] = ProcessInfo.processInfo.environment) -> Int {
        let names = ["PHALANX_LOCAL_WORLD_SIZE", "LOCAL_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE"]
        return names.lazy.compactMap { environment[$0].flatMap { Int($0) } }.first ?? worldSize
    }

    /// Compute threads per process: `OPENBLAS_NUM_THREADS`, else `OMP_NUM_THREADS`, else every
    /// core (OpenBLAS's default).
    static func computeThreads(cores: Int, environment: [String: String] = ProcessInfo.processInfo.environment) -> Int {
        ["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"].lazy.compactMap { environment[$0].flatMap { Int($0) } }.first ?? cores
    }

    /// Whether a step of a model with `parameterCount` gradients among `worldSize` members overlaps.
    func enabled(parameterCount: Int, worldSize: Int, cores: Int = ProcessInfo.processInfo.activeProcessorCount,
                 environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        guard worldSize > 1 else { return false }
        switch mode {
        case "on": return true
        case "auto":
            // (Clamped, so that absurd variables cannot overflow the product.)
            let local = min(max(Self.localRanks(worldSize: worldSize, environment: environment), 1), 1 << 16)
            let threads = min(max(Self.computeThreads(cores: cores, environment: environment), 1), 1 << 16)
            return parameterCount > bucketElements && cores >= local * (threads + 1)
        default: return false
        }
    }
}
