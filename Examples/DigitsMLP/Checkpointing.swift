// Saving and resuming DigitsMLP: everything that decides the next step goes into the checkpoint.
import Foundation
import Phalanx
import PhalanxCheckpoint

/// Copies the model's parameters and the optimizer's state (the training thread's only cost of
/// a save) together with the step and the optimizer's step count.
func snapshot(_ model: Sequential, _ optimizer: any Optimizer, step: Int, epoch: Int, batchSize: Int) throws -> CheckpointSnapshot {
    let parameters = CheckpointSnapshot.Group(
        entries: model.store.layout.entries.map { ($0.name, $0.shape, $0.offset) },
        copying: UnsafeBufferPointer(model.store.values.buffer))
    let state = CheckpointSnapshot.Group(
        entries: optimizer.stateLayout.entries.map { ($0.name, $0.shape, $0.offset) },
        copying: UnsafeBufferPointer(optimizer.state.buffer))
    let metadata = TrainingMetadata(
        step: step, epoch: epoch, dataCursor: step * batchSize, optimizerStepCount: optimizer.stepCount, worldSize: 1)
    return try CheckpointSnapshot(groups: [parameters, state], metadata: metadata)
}

/// Restores parameters, optimizer state and step count; returns the step to continue from.
func restore(_ checkpoint: LoadedCheckpoint, into model: Sequential, _ optimizer: any Optimizer) throws -> Int {
    try checkpoint.restore(model.store.layout.entries.map { ($0.name, $0.shape, $0.offset) }, into: model.store.values.buffer)
    try checkpoint.restore(optimizer.stateLayout.entries.map { ($0.name, $0.shape, $0.offset) }, into: optimizer.state.buffer)
    optimizer.stepCount = checkpoint.metadata.optimizerStepCount
    return checkpoint.metadata.step
}

/// Writes the final parameters as a plain safetensors file (loads in PyTorch/NumPy).
func saveWeights(_ model: Sequential, to path: String) throws {
    let base = UnsafeBufferPointer(model.store.values.buffer)
    let sources = model.store.layout.entries.map { entry in
        SafetensorsSource(name: entry.name, shape: entry.shape, values: UnsafeBufferPointer(rebasing: base[entry.range]))
    }
    try SafetensorsWriter.write(sources, metadata: ["format": "phalanx-weights"], toPath: path)
}
