import Foundation
import Phalanx
import PhalanxCheckpoint
import PhalanxElastic
import PhalanxPrometheus
import PhalanxTelemetry

extension Session {
    /// An elastic job over TCP: members may die, hang or join; the run goes on (docs/elastic.md).
    func runElastic() throws {
        var elastic = ElasticOptions()
        if let minimum = options.minMembers ?? ProcessInfo.processInfo.environment["PHALANX_MIN_MEMBERS"].flatMap(Int.init) { elastic.minimumMembers = minimum }
        if let maximum = ProcessInfo.processInfo.environment["PHALANX_MAX_MEMBERS"].flatMap(Int.init) { elastic.maximumMembers = maximum }
        elastic.checkpointDirectory = options.checkpointDirectory
        elastic.checkpointEvery = options.checkpointInterval
        if let ms = options.failureTimeoutMs {
            elastic.failureTimeout = .milliseconds(ms)
            elastic.heartbeatTimeout = .milliseconds(ms * 3 / 4)
            elastic.agreementTimeout = .milliseconds(ms)
        }
        if let seconds = options.joinWaitS { elastic.joinWaitTimeout = .milliseconds(Int(seconds * 1000)) }
        // PHALANX_METRICS_PORT: /metrics and /healthz; the member records into its registry.
        let metricsServer = try WorkerMetricsServer.fromEnvironment()
        defer { metricsServer?.close() }
        let member = try ElasticMember.start(options: elastic)
        if let metricsServer { member.metrics = metricsServer.metrics }
        metricsServer?.announce(member: member.id)
        var announced = member.id
        let metrics = member.metrics
        // In place: this loop changes the state only after its all-reduce succeeded, so commits
        // need no copy (docs/elastic.md, "State and the step in flight").
        let state = ElasticState(model: model, optimizer: optimizer, policy: .inPlace)
        let report = try RunReport(name: task.name, member: member.id, json: options.json, directory: options.outputDirectory, startStep: 0, totalSteps: totalSteps)
        report.say("member \(member.id) of \(member.worldSize): \(model.parameterCount) parameters, \(totalSteps) steps of \(options.batchSize) samples",
                   event: ["event": "started", "pid": Int(getpid()), "host": member.address.host, "port": Int(member.address.port), "world_size": member.worldSize])
        member.onMembershipChange = { [self] change in
            if Fault.planned(faults, .changekill, member: member.id, step: change.redoStep) { killSelf(report, step: change.redoStep) }
            report.changed(change)
            // Evicted and admitted again: a new member id for the launcher's labels.
            if member.id != announced {
                announced = member.id
                metricsServer?.announce(member: member.id)
            }
        }
        member.onCheckpoint = { step, start, end in report.timeline?.record(.checkpoint, from: start, to: end, arguments: ["step": step]) }
        var firstCommitAfterChange = false
        var stepStart = Date()
        var lossSinceReport = 0.0, stepsSinceReport = 0
        var lastLoss = 0.0
        member.onStepOutcome = { [self] outcome in
            switch outcome {
            case let .committed(step, worldSize):
                metrics.record(loss: lastLoss * Double(worldSize), samples: sampler.globalBatchCount(step: step))
                report.committed(step: step, loss: lastLoss * Double(worldSize), worldSize: worldSize, epoch: sampler.epoch(ofStep: step),
                                 seconds: Date().timeIntervalSince(stepStart), batchSize: options.batchSize)
                if firstCommitAfterChange {
                    firstCommitAfterChange = false
                    if options.json { report.say("", event: ["event": "first_commit", "step": step, "world_size": worldSize, "at": Date().timeIntervalSince1970]) }
                }
            case let .discarded(step, reason):
                if Fault.planned(faults, .recoverykill, member: member.id, step: step) { killSelf(report, step: step) }
                firstCommitAfterChange = true
                if options.json { report.say("", event: ["event": "discarded", "step": step, "reason": reason]) }
            }
        }
        let watcher = Thread { [stop] in
            // The signal flag becomes a request to stop at the next step boundary.
            while !stop.isSet { usleep(50_000) }
            member.requestStop()
        }
        watcher.start()
        let started = Date()
        var firstStep = true
        let summary = try member.run(state: state, until: totalSteps) { step in
            stepStart = Date()
            if firstStep {
                // Rates count from the first step this member runs (a joiner starts mid-run).
                firstStep = false
                report.progress = ProgressLine(startStep: step.index, totalSteps: totalSteps)
            }
            if Fault.planned(faults, .leave, member: member.id, step: step.index) {
                report.say("member \(member.id): leaving before step \(step.index) (fault injection)", event: ["event": "leaving", "step": step.index, "at": Date().timeIntervalSince1970])
                member.shutdown()
                exit(0)
            }
            // A planned kill lands after backward and before the step's all-reduce has completed
            // (with overlap, before backward releases the last bucket).
            let dies = Fault.planned(faults, .kill, member: member.id, step: step.index)
            let loss = try gradients(step: step.index, position: step.rank, members: step.worldSize, communicator: step.communicator, timeline: report.timeline,
                                     beforeLastBucket: dies ? { [self] in killSelf(report, step: step.index) } : nil)
            if dies { killSelf(report, step: step.index) }
            try reduceGradients(over: step.communicator, timeline: report.timeline)
            try update(step: step.index, timeline: report.timeline)
            lastLoss = loss
            lossSinceReport += loss * Double(step.worldSize)
            stepsSinceReport += 1
            if (step.index + 1) % printEvery == 0 || step.index + 1 == totalSteps {
                // The first member speaks for all; its slices, scaled to the global batch, estimate
                // the global loss.
                if !options.json, step.rank == 0 {
                    report.say(report.progress.line(step: step.index + 1, epoch: sampler.epoch(ofStep: step.index), loss: lossSinceReport / Double(max(stepsSinceReport, 1)),
                                                    worldSize: step.worldSize, batchSize: options.batchSize), event: [:])
                }
                lossSinceReport = 0
                stepsSinceReport = 0
            }
        }
        if summary.stopped {
            let path = member.rank == 0 ? try saveCheckpoint(state, worldSize: member.worldSize) : nil
            member.shutdown()
            throw Stopped(step: state.step, checkpoint: path)
        }
        try finish(report: report, member: member.id, steps: state.step, worldSize: member.worldSize, started: started, plot: member.rank == 0,
                   extra: ["committed": summary.committedSteps, "discarded": summary.discardedSteps, "changes": summary.changes.count])
        member.shutdown()
    }

    /// Writes the committed state now (stopping on a signal), if checkpoints are configured.
    func saveCheckpoint(_ state: ElasticState, worldSize: Int) throws -> String? {
        guard let directory = options.checkpointDirectory else { return nil }
        let store = try CheckpointStore(directory: directory, keep: 3)
        return try store.save(try state.checkpointSnapshot(epoch: sampler.epoch(ofStep: state.step), dataCursor: state.step, worldSize: worldSize))
    }
}
