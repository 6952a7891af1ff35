#if canImport(Glibc)
import Glibc
#endif

/// Where this process sits in a job, read from the launcher's environment variables.
///
/// Precedence: Phalanx's own `PHALANX_RANK` / `PHALANX_WORLD_SIZE` / `PHALANX_MASTER_ADDR` /
/// `PHALANX_MASTER_PORT`; then torchrun's `RANK` / `WORLD_SIZE` / `MASTER_ADDR` / `MASTER_PORT`;
/// then mpirun's `OMPI_COMM_WORLD_RANK` / `OMPI_COMM_WORLD_SIZE` (and `…_LOCAL_RANK`); then
/// Slurm's `SLURM_PROCID` / `SLURM_NTASKS` (and `SLURM_LOCALID`).
///
/// The rendezvous address is `PHALANX_MASTER_ADDR:PHALANX_MASTER_PORT`, else
/// `MASTER_ADDR:MASTER_PORT`. Under Slurm without them it is derived: the first host of the
/// step's node list, and port `slurmPort(job:step:)`. Elsewhere it falls back to
/// `127.0.0.1:29500` (torchrun's default).
///
/// Under torchrun the agent's c10d store already holds `MASTER_PORT`
/// (`TORCHELASTIC_USE_AGENT_STORE=True`): `agentStorePrefix` is then set, and the ranks
/// exchange their addresses through that store instead of hosting a rendezvous of their own.
public struct LaunchEnvironment: Sendable, Equatable {
    /// Which launcher's variables gave the rank and world size.
    public enum Source: String, Sendable, Equatable {
        /// `PHALANX_*` variables (phalanx-run, or set by hand).
        case phalanx
        /// torchrun / torch.distributed variables.
        case torchrun
        /// Open MPI's mpirun.
        case openMPI
        /// Slurm's srun.
        case slurm
        /// None found: a single process.
        case single
    }

    /// This process's rank, `0..<worldSize`.
    public var rank: Int
    /// The number of processes in the job.
    public var worldSize: Int
    /// The rank among the processes on this host (0 when unknown).
    public var localRank: Int
    /// The rendezvous host (rank 0's address, or a launcher's).
    public var masterAddress: String
    /// The rendezvous TCP port.
    public var masterPort: UInt16
    /// Where the rank and world size came from.
    public var source: Source
    /// Under torchrun with the agent's store at `masterAddress:masterPort`: the key prefix
    /// Phalanx's rendezvous uses in it (one per run). Nil: rank 0 hosts Phalanx's own
    /// rendezvous there.
    public var agentStorePrefix: String?

    /// Makes an environment by hand.
    public init(rank: Int, worldSize: Int, localRank: Int = 0, masterAddress: String = "127.0.0.1", masterPort: UInt16 = 29500, source: Source = .phalanx) {
        self.rank = rank
        self.worldSize = worldSize
        self.localRank = localRank
        self.masterAddress = masterAddress
        self.masterPort = masterPort
        self.source = source
    }

    /// An error in the launch variables, naming the variable and its value.
    public struct InvalidVariable: Error, CustomStringConvertible, Equatable {
        /// The variable's name.
        public var name: String
        /// Its value.
        public var value: String
        /// What is wrong.
        public var reason: String
        /// "PHALANX_RANK='x': not an integer".
        public var description: String { "\(name)='\(value)': \(reason)" }
    }

    /// Reads the process environment.
    /// - Throws: `InvalidVariable` for a non-numeric or out-of-range rank, size or port.
    public static func detect() throws -> LaunchEnvironment {
        try detect(from: processEnvironment())
    }

    /// Reads `variables` (for tests and launchers).
    /// - Throws: `InvalidVariable` for a non-numeric or out-of-range rank, size or port.
    public static func detect(from variables: [String: String]) throws -> LaunchEnvironment {
        let candidates: [(Source, String, String, String?)] = [
            (.phalanx, "PHALANX_RANK", "PHALANX_WORLD_SIZE", "PHALANX_LOCAL_RANK"),
            (.torchrun, "RANK", "WORLD_SIZE", "LOCAL_RANK"),
            (.openMPI, "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"),
            (.slurm, "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"),
        ]
        var result = LaunchEnvironment(rank: 0, worldSize: 1, source: .single)
        for (source, rankName, sizeName, localName) in candidates where variables[rankName] != nil {
            result.rank = try integer(rankName, variables, minimum: 0)
            result.worldSize = try integer(sizeName, variables, minimum: 1, required: true)
            result.localRank = try localName.map { variables[$0] == nil ? 0 : try integer($0, variables, minimum: 0) } ?? 0
            result.source = source
            guard result.rank < result.worldSize else {
                throw InvalidVariable(name: rankName, value: String(result.rank), reason: "must be below \(sizeName)=\(result.worldSize)")
            }
            break
        }
        result.masterAddress = variables["PHALANX_MASTER_ADDR"] ?? variables["MASTER_ADDR"] ?? "127.0.0.1"
        let portName = variables["PHALANX_MASTER_PORT"] != nil ? "PHALANX_MASTER_PORT" : "MASTER_PORT"
        if variables[portName] != nil {
            let port = try integer(portName, variables, minimum: 1)
            guard port <= 65535 else { throw InvalidVariable(name: portName, value: String(port), reason: "not a TCP port") }
            result.masterPort = UInt16(port)
        }
        if result.source == .slurm { try deriveSlurmRendezvous(&result, variables) }
        if result.source == .torchrun, variables["PHALANX_MASTER_PORT"] == nil, variables["PHALANX_MASTER_ADDR"] == nil,
           variables["TORCHELASTIC_USE_AGENT_STORE"]?.lowercased() == "true" {
            // One prefix for the whole run: the store outlives restarts, whose count differs
            // between nodes; the exchange tells rounds apart by itself (StoreRendezvous).
            result.agentStorePrefix = "phalanx/\(variables["TORCHELASTIC_RUN_ID"] ?? "none")/"
        }
        return result
    }

    /// The rendezvous port of a Slurm job step when no variable names one:
    /// 20000 + 32 × (job mod 398) + (step mod 32), below Linux's ephemeral ports (32768 on),
    /// different for the concurrent steps of one job and for most jobs sharing a first node.
    public static func slurmPort(job: Int, step: Int) -> UInt16 {
        UInt16(20000 + 32 * (job % 398) + step % 32)
    }

    /// Under Slurm, the first host of the step (else the job) and a port from the job and step
    /// ids, unless the variables name them.
    private static func deriveSlurmRendezvous(_ result: inout LaunchEnvironment, _ variables: [String: String]) throws {
        if variables["PHALANX_MASTER_ADDR"] == nil, variables["MASTER_ADDR"] == nil,
           let name = ["SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST"].first(where: { variables[$0] != nil }),
           let list = variables[name] {
            do {
                result.masterAddress = try SlurmHostList.first(of: list)
            } catch let error as SlurmHostList.Malformed {
                throw InvalidVariable(name: name, value: list, reason: error.reason)
            }
        }
        if variables["PHALANX_MASTER_PORT"] == nil, variables["MASTER_PORT"] == nil, variables["SLURM_JOB_ID"] != nil {
            let job = try integer("SLURM_JOB_ID", variables, minimum: 0)
            let step = variables["SLURM_STEP_ID"].flatMap { Int($0) } ?? 0
            result.masterPort = slurmPort(job: job, step: max(0, step))
        }
    }

    private static func integer(_ name: String, _ variables: [String: String], minimum: Int, required: Bool = true) throws -> Int {
        guard let text = variables[name] else {
            throw InvalidVariable(name: name, value: "", reason: "is not set")
        }
        guard let value = Int(text.trimmingCharacters()), value >= minimum else {
            throw InvalidVariable(name: name, value: text, reason: "must be an integer ≥ \(minimum)")
        }
        return value
    }

    /// The current process environment as a dictionary.
    public static func processEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        #if canImport(Glibc)
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        #endif
        return result
    }
}

extension String {
    fileprivate func trimmingCharacters() -> Substring {
        var s = self[...]
        while s.first?.isWhitespace == true { s.removeFirst() }
        while s.last?.isWhitespace == true { s.removeLast() }
        return s
    }
}
