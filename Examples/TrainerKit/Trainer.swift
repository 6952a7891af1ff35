import ArgumentParser
import Foundation
import Phalanx
import PhalanxCheckpoint
import PhalanxElastic
import PhalanxTelemetry

/// Runs an example's task in whichever way it was launched: one process, a static ring over
/// TCP or MPI, or an elastic job; with checkpoints, telemetry and fault injection.
public enum Trainer {
    /// Parses nothing: runs `task` with `options` and exits the process with the outcome
    /// (0 done, 1 failed, 75 no live member to join or too few members left with the state
    /// saved, 143 stopped by a signal after saving).
    public static func main(_ task: TrainingTask, _ options: TrainerOptions) -> Never {
        do {
            try run(task, options)
            ExitReport.exit(0)
        } catch let finished as ElasticError where finished.isJobFinished {
            FileHandle.standardError.write(Data("\(task.name): \(finished)\n".utf8))
            ExitReport.exit(0)
        } catch let unreachable as ElasticError where unreachable.isJobUnreachable || unreachable.isBelowMinimum {
            // No member of the job admitted this process, or too few were left and the state
            // was saved: a launcher may start the job again from its durable checkpoints
            // (phalanx-run does).
            FileHandle.standardError.write(Data("\(task.name): \(unreachable)\n".utf8))
            ExitReport.exit(ElasticError.jobUnreachableExitStatus)
        } catch let stop as Stopped {
            FileHandle.standardError.write(Data("\(task.name): \(stop.description)\n".utf8))
            ExitReport.exit(143)
        } catch {
            FileHandle.standardError.write(Data("\(task.name): \(error)\n".utf8))
            ExitReport.exit(1)
        }
    }

    /// The launch mode from the options and the environment.
    static func mode(_ options: TrainerOptions) -> String {
        let environment = ProcessInfo.processInfo.environment
        if options.elastic { return "elastic" }
        guard options.backend == "auto" else { return options.backend }
        if environment["PHALANX_ELASTIC"] == "1" || environment["PHALANX_JOIN"] != nil { return "elastic" }
        if environment["OMPI_COMM_WORLD_SIZE"] != nil { return "mpi" }
        let size = Int(environment["PHALANX_WORLD_SIZE"] ?? environment["WORLD_SIZE"] ?? environment["SLURM_NTASKS"] ?? "1") ?? 1
        return size > 1 ? "tcp" : "single"
    }

    /// Runs the task; throws when it failed or its accuracy is below the minimum.
    public static func run(_ task: TrainingTask, _ options: TrainerOptions) throws {
        MemoryPolicy.keepFreedMemoryForReuse()
        let session = try Session(task: task, options: options)
        let mode = mode(options)
        switch mode {
        case "elastic": try session.runElastic()
        case "single", "tcp", "mpi": try session.runStatic(backend: mode)
        default: throw ValidationError("unknown backend '\(mode)': use auto, single, tcp, mpi or elastic")
        }
    }
}

/// Stopped by SIGINT/SIGTERM at a step boundary, state saved.
struct Stopped: Error, CustomStringConvertible {
    let step: Int
    let checkpoint: String?
    var description: String {
        "stopped by a signal at step \(step)" + (checkpoint.map { "; state saved to \($0)" } ?? "")
    }
}

/// Set by SIGINT/SIGTERM; the loops stop at the next step boundary.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    private var sources: [DispatchSourceSignal] = []

    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }

    func install() {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in
                lock.lock()
                value = true
                lock.unlock()
            }
            source.resume()
            sources.append(source)
        }
    }
}
