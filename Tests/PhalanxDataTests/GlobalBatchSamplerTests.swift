import PhalanxData
import Testing

@Suite struct GlobalBatchSamplerTests {
    /// Every sample exactly once per epoch, for every member count 1…8 and every position,
    /// and the union of the members' slices of each step is the global batch, the same for all n.
    @Test(arguments: [(1, 1), (10, 3), (37, 8), (100, 16), (101, 7), (5, 10)])
    func everySampleOncePerEpochForEveryMemberCount(datasetSize: Int, batchSize: Int) throws {
        let sampler = try GlobalBatchSampler(datasetSize: datasetSize, globalBatchSize: batchSize, seed: 99)
        for epoch in 0..<2 {
            let steps = (epoch * sampler.stepsPerEpoch)..<((epoch + 1) * sampler.stepsPerEpoch)
            let reference = try steps.map { try sampler.globalBatch(step: $0) }
            #expect(reference.flatMap { $0 }.sorted() == Array(0..<datasetSize))
            for members in 1...8 {
                var seen = [Int](repeating: 0, count: datasetSize)
                for (k, step) in steps.enumerated() {
                    var union: [Int] = []
                    for position in 0..<members {
                        let slice = try sampler.indices(step: step, position: position, members: members)
                        for i in slice { seen[i] += 1 }
                        union += slice
                    }
                    #expect(union == reference[k], "step \(step), \(members) members")
                }
                #expect(seen.allSatisfy { $0 == 1 }, "epoch \(epoch), \(members) members")
            }
        }
    }

    @Test func epochsArePermutedDifferentlyAndReproducibly() throws {
        let a = try GlobalBatchSampler(datasetSize: 50, globalBatchSize: 10, seed: 1)
        let b = try GlobalBatchSampler(datasetSize: 50, globalBatchSize: 10, seed: 1)
        #expect(a.permutation(epoch: 0) == b.permutation(epoch: 0))
        #expect(a.permutation(epoch: 0) != a.permutation(epoch: 1))
        #expect(a.permutation(epoch: 0) != (try GlobalBatchSampler(datasetSize: 50, globalBatchSize: 10, seed: 2)).permutation(epoch: 0))
        #expect(a.epoch(ofStep: 4) == 0 && a.epoch(ofStep: 5) == 1)
        #expect(try a.globalBatch(step: 5) == Array(a.permutation(epoch: 1)[0..<10]))
    }

    @Test func slicesAreBalanced() throws {
        let sampler = try GlobalBatchSampler(datasetSize: 1000, globalBatchSize: 10, seed: 3)
        let sizes = try (0..<3).map { try sampler.indices(step: 0, position: $0, members: 3).count }
        #expect(sizes.sorted() == [3, 3, 4])
        // More members than samples: some members get an empty slice, none fails.
        let tiny = try (0..<4).map { try GlobalBatchSampler(datasetSize: 2, globalBatchSize: 2, seed: 0).indices(step: 0, position: $0, members: 4).count }
        #expect(tiny.reduce(0, +) == 2)
    }

    @Test func invalidArgumentsAreErrors() throws {
        #expect(throws: DataError.self) { try GlobalBatchSampler(datasetSize: 0, globalBatchSize: 1, seed: 0) }
        #expect(throws: DataError.self) { try GlobalBatchSampler(datasetSize: 10, globalBatchSize: 0, seed: 0) }
        let sampler = try GlobalBatchSampler(datasetSize: 10, globalBatchSize: 4, seed: 0)
        #expect(throws: DataError.self) { try sampler.indices(step: 0, position: 3, members: 3) }
        #expect(throws: DataError.self) { try sampler.indices(step: 0, position: 0, members: 0) }
        #expect(throws: DataError.self) { try sampler.globalBatch(step: -1) }
    }
}
