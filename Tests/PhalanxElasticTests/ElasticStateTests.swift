import Foundation
import PhalanxCheckpoint
import PhalanxCollectives
@testable import PhalanxElastic
import PhalanxNN
import PhalanxTensor
import PhalanxTesting
import Testing

/// Commit, restore, synchronisation and checkpoints of the elastic state, in one process.
struct ElasticStateTests {
    func makeModel(seed: UInt64) throws -> (Sequential, SGD) {
        let model = try Sequential([Linear(5, 7), ReLU(), Linear(7, 3)], seed: seed)
        let optimizer = try SGD(layout: model.store.layout, learningRate: 0.1, momentum: 0.9)
        return (model, optimizer)
    }

    @Test func aSnapshotRollsBackAFailedStep() throws {
        let (model, optimizer) = try makeModel(seed: 1)
        let state = ElasticState(model: model, optimizer: optimizer)
        let before = Array(model.store.values.buffer)
        state.markDirty()
        model.store.gradients.buffer.update(repeating: 1)
        try optimizer.step(model.store)
        #expect(Array(model.store.values.buffer) != before)
        #expect(optimizer.stepCount == 1)
        state.restore()
        #expect(Array(model.store.values.buffer) == before)
        #expect(optimizer.stepCount == 0)
        #expect(optimizer.state.buffer.allSatisfy { $0 == 0 })

        state.markDirty()
        try optimizer.step(model.store)
        state.commitStep()
        let committed = Array(model.store.values.buffer)
        state.markDirty()
        try optimizer.step(model.store)
        state.restore()
        #expect(Array(model.store.values.buffer) == committed)
        #expect(state.step == 1 && optimizer.stepCount == 1)
    }

    @Test func inPlaceCommitsCopyNothing() throws {
        let (model, optimizer) = try makeModel(seed: 2)
        let state = ElasticState(model: model, optimizer: optimizer, policy: .inPlace)
        #expect(state.entries.allSatisfy { $0.committed === $0.buffer })
        state.markDirty()
        try optimizer.step(model.store)
        let updated = Array(model.store.values.buffer)
        state.restore()  // nothing to roll back to: the closure promised not to fail after updating
        #expect(Array(model.store.values.buffer) == updated)
    }

    @Test func syncGivesEveryMemberTheSourceStateBitForBit() throws {
        let ring = InProcessRing(worldSize: 3)
        let results = RankThreads.run(count: 3) { rank in
            Result { () -> ([Float], [Float], Int, Int) in
                let (model, optimizer) = try makeModel(seed: UInt64(10 + rank))
                let state = ElasticState(model: model, optimizer: optimizer, step: rank == 1 ? 42 : 40)
                optimizer.stepCount = rank == 1 ? 1_000_000_007 : 3
                optimizer.state.buffer.update(repeating: Float(rank) + 0.5)
                state.commit()
                try state.sync(over: RingCommunicator(transport: ring.transport(rank: rank), epoch: 0), from: 1, options: .default)
                return (Array(model.store.values.buffer), Array(optimizer.state.buffer), state.step, optimizer.stepCount)
            }
        }
        let values = try results.map { try $0.get() }
        for value in values {
            #expect(value.0.map(\.bitPattern) == values[1].0.map(\.bitPattern))
            #expect(value.1 == values[1].1)
            #expect(value.2 == 42)
            #expect(value.3 == 1_000_000_007)
        }
    }

    @Test func aCheckpointRoundTrips() throws {
        let (model, optimizer) = try makeModel(seed: 3)
        let state = ElasticState(model: model, optimizer: optimizer, step: 17)
        optimizer.stepCount = 17
        optimizer.state.buffer.update(repeating: 0.25)
        state.commit()
        let directory = NSTemporaryDirectory() + "phalanx-state-\(UUID().uuidString)"
        let store = try CheckpointStore(directory: directory)
        let path = try store.save(try state.checkpointSnapshot(epoch: 0, dataCursor: 17, worldSize: 3))
        let (other, otherOptimizer) = try makeModel(seed: 4)
        let restored = ElasticState(model: other, optimizer: otherOptimizer)
        try restored.load(try store.load(path: path))
        #expect(restored.step == 17 && otherOptimizer.stepCount == 17)
        #expect(Array(other.store.values.buffer) == Array(model.store.values.buffer))
        #expect(Array(otherOptimizer.state.buffer) == Array(optimizer.state.buffer))
    }

    @Test func dropoutsRandomStateIsCommittedCheckpointedAndRestored() throws {
        func dropoutModel(seed: UInt64) throws -> (Sequential, SGD, Dropout) {
            let dropout = try Dropout(0.5, seed: 9)
            let model = try Sequential([Linear(4, 6), Residual([ReLU(), dropout]), Linear(6, 2)], seed: seed)
            return (model, try SGD(layout: model.store.layout, learningRate: 0.1), dropout)
        }
        let (model, optimizer, dropout) = try dropoutModel(seed: 1)
        #expect(model.dropouts.map(\.name) == ["layers.1.1"])
        let state = ElasticState(model: model, optimizer: optimizer, step: 5)
        dropout.draw = 11
        state.commit()
        dropout.draw = 12  // a step in flight, then discarded
        state.markDirty()
        state.restore()
        #expect(dropout.draw == 11, "a discarded step gives the random state back")
        let directory = NSTemporaryDirectory() + "phalanx-state-\(UUID().uuidString)"
        let store = try CheckpointStore(directory: directory)
        let path = try store.save(try state.checkpointSnapshot(epoch: 0, dataCursor: 5, worldSize: 1))
        let loaded = try store.load(path: path)
        #expect(loaded.metadata.extra["random.layers.1.1.draw"] == "11")
        let (other, otherOptimizer, otherDropout) = try dropoutModel(seed: 2)
        try ElasticState(model: other, optimizer: otherOptimizer).load(loaded)
        #expect(otherDropout.draw == 11)
        // The restored random state draws the same masks (the weights made equal first).
        let x = try Tensor(shape: [3, 4], scalars: (0..<12).map { Float($0) / 7 })
        other.store.values.baseAddress.update(from: model.store.values.baseAddress, count: model.store.count)
        dropout.draw = 11
        let expected = try model.forward(x).scalars
        #expect(try other.forward(x).scalars == expected)
        #expect(try other.forward(x).scalars != expected, "the next draw is another mask")
    }
}

/// Options that contradict each other are refused before anything starts.
struct ElasticOptionsTests {
    @Test func contradictionsAreNamed() throws {
        try ElasticOptions().validate()
        var options = ElasticOptions()
        options.minimumMembers = 5
        options.maximumMembers = 3
        #expect(throws: ElasticError.invalidOptions("maximumMembers (3) is below minimumMembers (5)")) { try options.validate() }
        options = ElasticOptions()
        options.heartbeatTimeout = .seconds(3)
        #expect { try options.validate() } throws: { ($0 as? ElasticError)?.description.contains("heartbeatTimeout") == true }
        options = ElasticOptions()
        options.agreementTimeout = .zero
        #expect { try options.validate() } throws: { ($0 as? ElasticError)?.description.contains("agreementTimeout") == true }
    }
}
