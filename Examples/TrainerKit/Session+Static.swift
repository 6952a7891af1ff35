import Foundation
import Phalanx
import PhalanxCheckpoint
import PhalanxElastic
import PhalanxMPI
import PhalanxPrometheus
import PhalanxTelemetry

extension Session {
    /// One process, or a fixed set of ranks over our TCP ring or Open MPI. A failed rank ends
    /// the job (use the elastic mode to survive it); checkpoints let a new job resume.
    func runStatic(backend: String) throws {
        let communicator: (any Communicator)?
        switch backend {
        case "tcp": communicator = try TCPBootstrap.communicator()
        case "mpi": communicator = try MPICommunicator()
        default: communicator = nil
        }
        defer { if backend == "mpi" { MPIRuntime.finalize() } }
        let rank = communicator?.rank ?? 0, size = communicator?.worldSize ?? 1
        let metricsServer = try WorkerMetricsServer.fromEnvironment()
        defer { metricsServer?.close() }
        let metrics = metricsServer?.metrics ?? PhalanxMetrics()
        metrics.identify(member: rank, minimumWorldSize: size)
        metricsServer?.announce(member: rank)
        // The state in checkpoints is the same as the elastic mode's (parameters, optimizer
        // state, step, optimizer step count).
        let state = ElasticState(model: model, optimizer: optimizer, policy: .inPlace)
        var writer: AsyncCheckpointWriter?
        if let directory = options.checkpointDirectory {
            let store = try CheckpointStore(directory: directory, keep: 3)
            if rank == 0 {
                let (latest, skipped) = store.latestValid()
                for reason in skipped { print("skipping checkpoint: \(reason)") }
                if let latest {
                    try state.load(latest)
                    print("resumed from \(latest.file.path) at step \(state.step)")
                }
                writer = AsyncCheckpointWriter(store: store) { path, saved, took in
                    metrics.checkpointWritten(path: path, step: saved, took: took)
                    print("checkpoint written step \(saved): \(path)")
                }
            }
        }
        metrics.expectCheckpoints(every: writer != nil ? options.checkpointInterval : 0)
        // A failed step ends the job, but the checkpoints submitted before it hold committed
        // steps: they are written before the process exits (a launcher restarts from them).
        defer { try? writer?.close() }
        if let communicator, size > 1 { try state.sync(over: communicator, from: 0) }  // rank 0's (resumed) state to all
        let report = try RunReport(name: task.name, member: rank, json: options.json, directory: options.outputDirectory, startStep: state.step, totalSteps: totalSteps)
        let started = Date()
        if rank == 0 || options.json {
            report.say("\(task.name): \(backend) backend, rank \(rank) of \(size); \(model.parameterCount) parameters; steps \(state.step)..<\(totalSteps) of \(options.batchSize) samples",
                       event: ["event": "started", "pid": Int(getpid()), "world_size": size, "backend": backend])
        }
        var lossSinceReport = 0.0, stepsSinceReport = 0
        while state.step < totalSteps {
            let step = state.step
            if stop.isSet {
                try writer?.close()
                let path = rank == 0 ? try saveCheckpoint(state, worldSize: size) : nil
                throw Stopped(step: step, checkpoint: path)
            }
            if Fault.planned(faults, .leave, member: rank, step: step) { exit(0) }
            let stepStart = Date()
            let loss = try gradients(step: step, position: rank, members: size, communicator: communicator, timeline: report.timeline)
            if Fault.planned(faults, .kill, member: rank, step: step) { killSelf(report, step: step) }
            try reduceGradients(over: communicator, timeline: report.timeline)
            try update(step: step, timeline: report.timeline)
            state.commitStep()
            let stepSeconds = Date().timeIntervalSince(stepStart)
            metrics.stepCommitted(step: state.step, worldSize: size, epoch: 0, seconds: stepSeconds)
            metrics.record(loss: loss * Double(size), samples: sampler.globalBatchCount(step: step))
            report.committed(step: step, loss: loss * Double(size), worldSize: size, epoch: sampler.epoch(ofStep: step),
                             seconds: stepSeconds, batchSize: options.batchSize)
            lossSinceReport += loss
            stepsSinceReport += 1
            if state.step == options.killAtStepThisAttempt {
                print("killing myself with SIGKILL at step \(state.step)")
                fflush(nil)
                kill(getpid(), SIGKILL)
            }
            if let writer, state.step % options.checkpointInterval == 0 {
                print("checkpoint saving step \(state.step)")
                let start = Date()
                try writer.submit(try state.checkpointSnapshot(epoch: sampler.epoch(ofStep: state.step), dataCursor: state.step, worldSize: size))
                report.timeline?.record(.checkpoint, from: start, to: Date())
            }
            if state.step % printEvery == 0 || state.step == totalSteps {
                var pair: [Float] = [Float(lossSinceReport), Float(stepsSinceReport)]
                if let communicator, size > 1 { try pair.withUnsafeMutableBufferPointer { try communicator.allReduce($0, op: .sum) } }
                let mean = Double(pair[0]) / Double(max(pair[1] / Float(size), 1))
                if rank == 0 || options.json {
                    report.say(report.progress.line(step: state.step, epoch: sampler.epoch(ofStep: step), loss: mean, worldSize: size, batchSize: options.batchSize),
                               event: ["event": "progress", "step": state.step, "loss": mean, "world_size": size])
                }
                lossSinceReport = 0
                stepsSinceReport = 0
            }
        }
        try writer?.close()
        try finish(report: report, member: rank, steps: state.step, worldSize: size, started: started, plot: rank == 0)
    }

    /// Fault injection: dies as abruptly as a power cut would take it.
    func killSelf(_ report: RunReport, step: Int) -> Never {
        report.say("member \(report.member): killing myself with SIGKILL at step \(step) (fault injection)",
                   event: ["event": "killed", "step": step, "at": Date().timeIntervalSince1970])
        kill(getpid(), SIGKILL)
        exit(137)
    }
}
