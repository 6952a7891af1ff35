import ArgumentParser
import Foundation

/// The options every example trainer shares (model- and data-specific ones are the example's).
public struct TrainerOptions: ParsableArguments {
    @Option(help: "Epochs to train (ignored with --steps; default: the example's, 30 for the digits).")
    public var epochs: Int?
    @Option(help: "Total steps (default: epochs × steps per epoch).")
    public var steps: Int?
    @Option(help: "Global batch size: split among the members, the same whatever their number.")
    public var batchSize = 64
    @Option(name: .customLong("lr"), help: "Learning rate (cosine decay over the run).")
    public var learningRate: Float = 3e-3
    @Option(help: "Seed for data order and initial weights.")
    public var seed: UInt64 = 42

    @Option(help: "Bit-identical training whatever the number of members: each global batch is cut into N fixed shards, each computed alone, and their gradients summed exactly (ExactSum). The same N gives the same weights alone, on any ring and through any elastic history; 0: off.")
    public var deterministicShards = 0

    @Option(help: "Overlap the gradient all-reduce with backward (buckets reduced on a communication thread as backward finishes them): on, off, or auto (on when the gradients fill more than one bucket and the host has a core to spare for each local rank's communication thread: cores ≥ local ranks × (BLAS threads + 1)).")
    /// on, off or auto (`OverlapPolicy`).
    public var overlap = "auto"
    @Option(help: "Bucket size for --overlap, in KiB of gradients.")
    /// KiB of gradients per bucket of the overlapped all-reduce.
    public var bucketKb = 256

    @Option(help: "auto, single, tcp, mpi or elastic. auto: elastic if --elastic or PHALANX_ELASTIC=1, mpi under mpirun, tcp with PHALANX_*/torchrun variables, else single.")
    public var backend = "auto"
    @Flag(help: "Elastic training over TCP (survives failed members, admits joiners).")
    public var elastic = false
    @Option(help: "Elastic: the fewest members training may go on with.")
    public var minMembers: Int?
    @Option(help: "Elastic: collective timeout in ms (heartbeat timeout is 3/4 of it).")
    public var failureTimeoutMs: Int?
    @Option(help: "Elastic: seconds to wait for joiners below the minimum.")
    public var joinWaitS: Double?

    @Option(help: "Start from the weights in this safetensors file (names as in --save).")
    public var `init`: String?
    @Option(help: "Write the final weights here (safetensors); {member} is replaced by the member id.")
    public var save: String?
    @Option(help: "Durable checkpoints in this directory; a run started again resumes from the newest valid one.")
    public var checkpointDir: String?
    @Option(help: "Steps between checkpoints (default: PHALANX_CHECKPOINT_EVERY, else 50).")
    public var checkpointEvery: Int?
    @Option(help: "Directory for metrics (JSON lines), the timeline (Chrome trace) and the plot (SVG). Default: PHALANX_OUT_DIR, else none.")
    public var outDir: String?
    @Option(help: "Print a progress line every N steps (default: every 5 epochs).")
    public var printEvery: Int?
    @Flag(help: "Print JSON lines (events) instead of text.")
    public var json = false
    @Option(help: "Fail (exit 1) if the final held-out accuracy is below this.")
    public var minAccuracy: Float = 0

    @Option(help: "Fault injection: SIGKILL this rank/member at --at-step (also PHALANX_KILL_RANK).")
    public var killRank: Int?
    @Option(help: "Fault injection: the step for --kill-rank (also PHALANX_KILL_AT_STEP).")
    public var atStep: Int?
    @Option(help: "Fault injection, general form: kill|leave|recoverykill|changekill:MEMBER:STEP[,…] (also PHALANX_FAULT).")
    public var fault: String?
    @Option(help: "Single process: SIGKILL itself after step S (to watch a resume from checkpoints).")
    public var killAtStep: Int?
    @Option(help: "Extra milliseconds of 'compute' per step (to make failures land mid-run in demos and tests).")
    public var stepDelayMs = 0

    public init() {}

    /// The durable checkpoint directory: `--checkpoint-dir`, else `PHALANX_CHECKPOINT_DIR` (what
    /// phalanx-run sets, so that a job that lost every member resumes from disk).
    public var checkpointDirectory: String? { checkpointDir ?? ProcessInfo.processInfo.environment["PHALANX_CHECKPOINT_DIR"] }

    /// Steps between durable checkpoints: `--checkpoint-every`, else `PHALANX_CHECKPOINT_EVERY`
    /// (what `phalanx-run --checkpoint-every` sets), else 50.
    public var checkpointInterval: Int {
        max(1, checkpointEvery ?? ProcessInfo.processInfo.environment["PHALANX_CHECKPOINT_EVERY"].flatMap(Int.init) ?? 50)
    }

    /// The directory for metrics, timeline and plot, if any.
    public var outputDirectory: String? { outDir ?? ProcessInfo.processInfo.environment["PHALANX_OUT_DIR"] }

    /// Which attempt of the job this is under a launcher that restarts it (torchrun's
    /// `TORCHELASTIC_RESTART_COUNT`, Slurm's `SLURM_RESTART_COUNT`); 0 for the first.
    public static var restartCount: Int {
        let environment = ProcessInfo.processInfo.environment
        return ["TORCHELASTIC_RESTART_COUNT", "SLURM_RESTART_COUNT"].lazy.compactMap { environment[$0].flatMap(Int.init) }.first ?? 0
    }

    /// `--kill-at-step`, in a launcher's first attempt only (as the other faults).
    public var killAtStepThisAttempt: Int? { Self.restartCount == 0 ? killAtStep : nil }

    /// The planned faults from the flags and the environment. A launcher's restarted attempt
    /// (torchrun's `TORCHELASTIC_RESTART_COUNT` > 0, Slurm's `SLURM_RESTART_COUNT` > 0) runs
    /// none: a fault is injected once, not again at the same step after every resume.
    public func faults() throws -> [Fault] {
        let environment = ProcessInfo.processInfo.environment
        let restart = Self.restartCount
        var list = try Fault.list(fault ?? environment["PHALANX_FAULT"] ?? "")
        let rank = killRank ?? environment["PHALANX_KILL_RANK"].flatMap(Int.init)
        let step = atStep ?? environment["PHALANX_KILL_AT_STEP"].flatMap(Int.init)
        if let rank, let step { list.append(Fault(kind: .kill, member: rank, step: step)) }
        if (rank == nil) != (step == nil) { throw ValidationError("--kill-rank and --at-step go together") }
        if restart > 0, !list.isEmpty {
            print("fault injection off in restart \(restart) of the job (faults are injected in its first attempt only)")
            return []
        }
        return list
    }
}
