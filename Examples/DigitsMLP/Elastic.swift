// DigitsMLP --elastic: the same training, data-parallel across the members of an elastic job.
//
// Each step's global batch is fixed by the step number; each member takes the slice that
// matches its ring position, computes the gradient of the *global* mean loss on it
// (normaliser = global batch size), and the ring sums the gradients. So the model does not
// depend on how many members there are, and a member that dies costs one redone step.
import Foundation
import Phalanx
import PhalanxCheckpoint
import PhalanxElastic

/// Fault injection for users: `kill:R:S` SIGKILLs member R in the middle of step S (after its
/// backward pass, before the all-reduce); `leave:R:S` makes member R exit cleanly before step S;
/// `recoverykill:R:S` SIGKILLs member R as soon as it takes part in a recovery at step ≥ S;
/// `changekill:R:S` SIGKILLs member R right after it applied a change of members at step ≥ S
/// (while the others rebuild the ring and synchronise).
/// Several faults are separated by commas; `PHALANX_FAULT` takes the same text.
struct Fault {
    enum Kind: String { case kill, leave, recoverykill, changekill }
    let kind: Kind
    let member: Int
    let step: Int

    init(_ text: String) throws {
        let parts = text.split(separator: ":")
        guard parts.count == 3, let kind = Kind(rawValue: String(parts[0])), let member = Int(parts[1]), let step = Int(parts[2]) else {
            throw UsageError("--fault wants kill|leave|recoverykill|changekill:MEMBER:STEP, got '\(text)'")
        }
        self.kind = kind
        self.member = member
        self.step = step
    }

    /// Several faults, comma-separated.
    static func list(_ text: String) throws -> [Fault] { try text.split(separator: ",").map { try Fault(String($0)) } }

    /// The fault of `kind` for `member` at `step`, if one is planned.
    static func planned(_ faults: [Fault], _ kind: Kind, member: Int, step: Int) -> Bool {
        faults.contains { $0.kind == kind && $0.member == member && ([.recoverykill, .changekill].contains(kind) ? step >= $0.step : step == $0.step) }
    }
}

/// One JSON object per line on standard output (for tests and tools).
func emit(_ fields: [String: Any]) {
    guard let data = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]), let line = String(data: data, encoding: .utf8) else { return }
    print(line)
    fflush(nil)
}

func runElastic(_ options: Options) throws {
    MemoryPolicy.keepFreedMemoryForReuse()
    let digits = try DigitsDataset.load()
    let (train, test) = try digits.split(trainFraction: 0.8, seed: options.seed)
    let model = try Sequential([Linear(64, options.hidden), ReLU(), Linear(options.hidden, 10)], seed: options.seed)
    let optimizer = try AdamW(layout: model.store.layout, learningRate: options.learningRate, weightDecay: 1e-4)
    let sampler = try GlobalBatchSampler(datasetSize: train.count, globalBatchSize: options.batchSize, seed: options.seed)
    let totalSteps = options.steps ?? options.epochs * sampler.stepsPerEpoch
    let schedule = CosineDecay(base: options.learningRate, totalSteps: totalSteps)

    var elasticOptions = ElasticOptions()
    elasticOptions.minimumMembers = options.minimumMembers
    elasticOptions.checkpointDirectory = options.checkpointDirectory
    elasticOptions.checkpointEvery = options.checkpointEvery
    if let ms = options.failureTimeoutMilliseconds {
        elasticOptions.failureTimeout = .milliseconds(ms)
        elasticOptions.heartbeatTimeout = .milliseconds(ms * 3 / 4)
        elasticOptions.agreementTimeout = .milliseconds(ms)
    }
    if let seconds = options.joinWaitSeconds { elasticOptions.joinWaitTimeout = .milliseconds(Int(seconds * 1000)) }
    let member = try ElasticMember.start(options: elasticOptions)
    // In place: this loop changes the state only after its all-reduce succeeded, so commits
    // need no copy (see docs/elastic.md, "State and the step in flight").
    let state = ElasticState(model: model, optimizer: optimizer, policy: .inPlace)
    if options.json {
        emit(["event": "started", "member": member.id, "pid": Int(getpid()), "host": member.address.host, "port": Int(member.address.port),
              "world_size": member.worldSize])
    } else {
        print("member \(member.id) of \(member.worldSize): \(model.parameterCount) parameters, \(totalSteps) steps of \(options.batchSize) samples")
    }
    member.onMembershipChange = { change in
        if Fault.planned(options.faults, .changekill, member: member.id, step: change.redoStep) {
            if options.json { emit(["event": "killed", "member": member.id, "step": change.redoStep, "at": Date().timeIntervalSince1970]) }
            kill(getpid(), SIGKILL)
        }
        if options.json {
            emit(["event": "change", "member": member.id, "epoch": Int(change.epoch), "members": change.members, "lost": change.lost,
                  "joined": change.joined, "redo_step": change.redoStep, "interrupted_step": change.interruptedStep,
                  "world_size": change.worldSize, "kept_connections": change.keptConnections, "reason": change.reason,
                  "detected_at": change.detectedAt.timeIntervalSince1970, "agreed_at": change.agreedAt.timeIntervalSince1970,
                  "rebuilt_at": change.rebuiltAt.timeIntervalSince1970, "restored_at": change.restoredAt.timeIntervalSince1970])
        } else {
            print("member \(member.id): \(change.summary)")
        }
    }
    var firstCommitAfterChange = false
    member.onStepOutcome = { outcome in
        if case let .discarded(step, _) = outcome, Fault.planned(options.faults, .recoverykill, member: member.id, step: step) {
            if options.json { emit(["event": "killed", "member": member.id, "step": step, "at": Date().timeIntervalSince1970]) }
            kill(getpid(), SIGKILL)
        }
        guard options.json else { return }
        switch outcome {
        case let .committed(step, worldSize) where firstCommitAfterChange:
            firstCommitAfterChange = false
            emit(["event": "first_commit", "member": member.id, "step": step, "world_size": worldSize, "at": Date().timeIntervalSince1970])
        case let .discarded(step, reason):
            firstCommitAfterChange = true
            emit(["event": "discarded", "member": member.id, "step": step, "reason": reason])
        default: break
        }
    }

    let start = Date()
    var lossSum = 0.0, lossCount = 0
    let printEvery = options.printEvery ?? sampler.stepsPerEpoch * 5
    let summary = try member.run(state: state, until: totalSteps) { step in
        if Fault.planned(options.faults, .leave, member: member.id, step: step.index) {
            if options.json { emit(["event": "leaving", "member": member.id, "step": step.index, "at": Date().timeIntervalSince1970]) }
            member.shutdown()
            exit(0)
        }
        let indices = try sampler.indices(step: step.index, position: step.rank, members: step.worldSize)
        let globalCount = sampler.globalBatchCount(step: step.index)
        model.store.gradients.zero()
        if !indices.isEmpty {
            let (x, labels) = try train.batch(indices)
            let loss = try softmaxCrossEntropy(logits: try model.forward(x), labels: labels, normalizer: globalCount)
            try model.backward(loss.gradient)
            lossSum += Double(loss.loss) * Double(indices.count) / Double(globalCount)
        }
        if Fault.planned(options.faults, .kill, member: member.id, step: step.index) {
            if options.json { emit(["event": "killed", "member": member.id, "step": step.index, "at": Date().timeIntervalSince1970]) }
            kill(getpid(), SIGKILL)
        }
        if options.stepDelayMilliseconds > 0 { usleep(UInt32(options.stepDelayMilliseconds * 1000)) }
        try step.communicator.allReduce(model.store.gradients, op: .sum)
        optimizer.learningRate = schedule.learningRate(atStep: step.index)
        try optimizer.step(model.store)
        lossCount += 1
        if !options.json, (step.index + 1) % printEvery == 0 {
            print(String(format: "member %d  step %5d  world %d  loss (own slice) %.4f  %.0f steps/s",
                         member.id, step.index + 1, step.worldSize, lossSum / Double(max(lossCount, 1)), Double(lossCount) / Date().timeIntervalSince(start)))
            fflush(nil)
        }
    }
    if let path = options.savePath {
        try saveWeights(model, to: path.replacingOccurrences(of: "{member}", with: String(member.id)))
    }
    let final = try evaluate(model, on: test)
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for value in model.store.values.buffer {
        hash = (hash ^ UInt64(value.bitPattern)) &* 0x100_0000_01b3
    }
    if options.json {
        emit(["event": "done", "member": member.id, "pid": Int(getpid()), "steps": state.step, "accuracy": Double(final),
              "params_hash": String(hash, radix: 16), "committed": summary.committedSteps, "discarded": summary.discardedSteps,
              "changes": summary.changes.count, "world_size": member.worldSize, "seconds": Date().timeIntervalSince(start)])
    } else {
        print(String(format: "member %d: final held-out accuracy %.2f%% after %d steps in %.2f s (%d change(s) of members)",
                     member.id, 100 * final, state.step, Date().timeIntervalSince(start), summary.changes.count))
    }
    member.shutdown()
    if final < options.minimumAccuracy {
        throw UsageError(String(format: "accuracy %.4f is below --min-accuracy %.4f", final, options.minimumAccuracy))
    }
}
