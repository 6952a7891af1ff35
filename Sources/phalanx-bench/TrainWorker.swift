import ArgumentParser
import Foundation
import Phalanx
import PhalanxElastic

/// `phalanx-bench train-worker` (hidden): one rank of a synthetic MLP training job, either on
/// the plain TCP ring or elastic, printing JSON lines (step times, membership changes).
struct TrainWorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train-worker", abstract: "One rank of the recovery benchmark.", shouldDisplay: false)

    @Option(help: "plain (TCP ring), elastic, paired (both in one job, alternating blocks of 10 steps) or metrics (elastic with metrics on and off, alternating).")
    var mode = "elastic"
    @Option(help: "Steps to train.")
    var steps = 200
    @Option(help: "Input features.")
    var input = 256
    @Option(help: "Hidden width of the two hidden layers.")
    var hidden = 512
    @Option(help: "Global batch size.")
    var batch = 256
    @Option(help: "Commit policy in elastic mode: snapshot or inplace.")
    var policy = "snapshot"
    @Option(help: "Metrics mode: seconds between scrapes of /metrics while metrics are on (0: none).")
    var scrapeEvery: Double = 1
    @Option(help: "MEMBER:STEP[,…] — that member SIGKILLs itself after its backward pass of that step; MEMBER:recovery — as soon as it discards a step (during the agreement).")
    var fault: String?

    var commitPolicy: ElasticState.CommitPolicy { policy == "inplace" ? .inPlace : .snapshot }

    func run() throws {
        MemoryPolicy.keepFreedMemoryForReuse()
        let workload = try SyntheticWorkload(input: input, hidden: hidden, batch: batch)
        var killAt: [(member: Int, step: Int)] = []
        var killInRecovery: [Int] = []
        for item in (fault ?? "").split(separator: ",") {
            let parts = item.split(separator: ":")
            guard parts.count == 2, let member = Int(parts[0]) else { continue }
            if parts[1] == "recovery" { killInRecovery.append(member) } else if let step = Int(parts[1]) { killAt.append((member, step)) }
        }
        var times: [Double] = []
        var last = DispatchTime.now().uptimeNanoseconds
        func tick() {
            let now = DispatchTime.now().uptimeNanoseconds
            times.append(Double(now - last) / 1e3)
            last = now
        }
        if mode == "plain" {
            let ring = try TCPBootstrap.communicator()
            last = DispatchTime.now().uptimeNanoseconds
            for step in 0..<steps {
                try workload.step(step, position: ring.rank, members: ring.worldSize) { try ring.allReduce($0, op: .sum) }
                tick()
            }
            emitDone(member: ring.rank, worldSize: ring.worldSize, times: times, workload: workload)
            return
        }
        var options = ElasticOptions()
        options.startTimeout = .seconds(120)
        let member = try ElasticMember.start(options: options)
        if mode == "paired" { return try paired(member) }
        if mode == "metrics" { return try metricsPaired(member) }
        let state = ElasticState(model: workload.model, optimizer: workload.optimizer, policy: commitPolicy)
        emit(["event": "started", "member": member.id, "pid": Int(getpid())])
        var afterChange = false
        member.onMembershipChange = { change in
            emit(["event": "change", "member": member.id, "lost": change.lost, "redo_step": change.redoStep, "interrupted_step": change.interruptedStep,
                  "world_size": change.worldSize, "kept_connections": change.keptConnections,
                  "detected_at": change.detectedAt.timeIntervalSince1970, "agreed_at": change.agreedAt.timeIntervalSince1970,
                  "rebuilt_at": change.rebuiltAt.timeIntervalSince1970, "restored_at": change.restoredAt.timeIntervalSince1970])
        }
        member.onStepOutcome = { outcome in
            switch outcome {
            case let .committed(step, worldSize):
                if afterChange {
                    afterChange = false
                    emit(["event": "first_commit", "member": member.id, "step": step, "world_size": worldSize, "at": Date().timeIntervalSince1970])
                    last = DispatchTime.now().uptimeNanoseconds
                } else { tick() }
            case let .discarded(step, _):
                afterChange = true
                if killInRecovery.contains(member.id) {
                    emit(["event": "killed", "member": member.id, "step": step, "at": Date().timeIntervalSince1970])
                    kill(getpid(), SIGKILL)
                }
            }
        }
        last = DispatchTime.now().uptimeNanoseconds
        try member.run(state: state, until: steps) { step in
            try workload.step(step.index, position: step.rank, members: step.worldSize) { gradients in
                if killAt.contains(where: { $0.member == member.id && $0.step == step.index }) {
                    emit(["event": "killed", "member": member.id, "step": step.index, "at": Date().timeIntervalSince1970])
                    kill(getpid(), SIGKILL)
                }
                try step.communicator.allReduce(gradients, op: .sum)
            }
        }
        emitDone(member: member.id, worldSize: member.worldSize, times: times, workload: workload)
        member.shutdown()
    }

    /// The overhead measurement: the plain ring and the elastic member train the same workload
    /// in alternating blocks of 10 steps in the same processes, so load changes hit both alike.
    private func paired(_ member: ElasticMember) throws {
        var variables = LaunchEnvironment.processEnvironment()
        variables["PHALANX_MASTER_PORT"] = variables["PHALANX_SECOND_MASTER_PORT"]
        let ring = try TCPBootstrap.communicator(variables: variables)
        let plain = try SyntheticWorkload(input: input, hidden: hidden, batch: batch)
        let elastic = try SyntheticWorkload(input: input, hidden: hidden, batch: batch)
        let state = ElasticState(model: elastic.model, optimizer: elastic.optimizer, policy: commitPolicy)
        var plainTimes: [Double] = [], elasticTimes: [Double] = []
        var last = DispatchTime.now().uptimeNanoseconds
        func elapsed() -> Double {
            let now = DispatchTime.now().uptimeNanoseconds
            defer { last = now }
            return Double(now - last) / 1e3
        }
        member.onStepOutcome = { if case .committed = $0 { elasticTimes.append(elapsed()) } }
        for block in 0..<(steps / 10) {
            _ = elapsed()
            for step in (block * 10)..<(block * 10 + 10) {
                try plain.step(step, position: ring.rank, members: ring.worldSize) { try ring.allReduce($0, op: .sum) }
                plainTimes.append(elapsed())
            }
            _ = elapsed()
            try member.run(state: state, until: block * 10 + 10) { step in
                try elastic.step(step.index, position: step.rank, members: step.worldSize) { try step.communicator.allReduce($0, op: .sum) }
            }
        }
        emit(["event": "done", "member": member.id, "world_size": member.worldSize,
              "plain_step_us": Timing.median(of: Timing.steady(plainTimes)), "elastic_step_us": Timing.median(of: Timing.steady(elasticTimes)),
              "parameters": plain.model.parameterCount])
        member.shutdown()
    }

    private func emitDone(member: Int, worldSize: Int, times: [Double], workload: SyntheticWorkload) {
        let steady = Timing.steady(times)
        let mean = steady.isEmpty ? 0 : steady.reduce(0, +) / Double(steady.count)
        emit(["event": "done", "member": member, "world_size": worldSize, "median_step_us": Timing.median(of: steady), "mean_step_us": mean,
              "parameters": workload.model.parameterCount, "steps_timed": steady.count])
    }
}

/// The synthetic task (`SyntheticDataset`) with an MLP input → hidden → hidden → 10 trained with
/// SGD and momentum.
final class SyntheticWorkload {
    let model: Sequential
    let optimizer: SGD
    let data: InMemoryDataset
    let sampler: GlobalBatchSampler

    init(input: Int, hidden: Int, batch: Int, samples: Int = 8192, seed: UInt64 = 7) throws {
        data = try SyntheticDataset.make(samples: samples, features: input, seed: seed)
        model = try Sequential([Linear(input, hidden), ReLU(), Linear(hidden, hidden), ReLU(), Linear(hidden, 10)], seed: seed)
        optimizer = try SGD(layout: model.store.layout, learningRate: 0.01, momentum: 0.9)
        sampler = try GlobalBatchSampler(datasetSize: samples, globalBatchSize: batch, seed: seed)
    }

    /// One step on this member's slice of the global batch; `allReduce` sums the gradients.
    func step(_ index: Int, position: Int, members: Int, allReduce: (FlatBuffer) throws -> Void) throws {
        let indices = try sampler.indices(step: index, position: position, members: members)
        model.store.gradients.zero()
        if !indices.isEmpty {
            let (x, labels) = try data.batch(indices)
            let loss = try softmaxCrossEntropy(logits: try model.forward(x), labels: labels, normalizer: sampler.globalBatchCount(step: index))
            try model.backward(loss.gradient)
        }
        try allReduce(model.store.gradients)
        try optimizer.step(model.store)
    }
}

/// One JSON object per line on standard output.
func emit(_ fields: [String: Any]) {
    guard let data = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]) else { return }
    print(String(decoding: data, as: UTF8.self))
    fflush(nil)
}
