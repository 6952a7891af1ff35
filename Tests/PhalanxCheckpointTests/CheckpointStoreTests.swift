import Foundation
import PhalanxCheckpoint
import PhalanxTensor
import Testing

@Suite struct CheckpointStoreTests {
    static func directory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("phalanx-store-\(UUID().uuidString)").path
    }

    static func snapshot(step: Int, seed: UInt64, parameters: Int = 37) throws -> CheckpointSnapshot {
        var generator = SeededGenerator(seed: seed)
        let values = try Tensor.normal([parameters], generator: &generator).scalars
        let moments = try Tensor.normal([2 * parameters], generator: &generator).scalars
        let parameterGroup = values.withUnsafeBufferPointer {
            CheckpointSnapshot.Group(entries: [("layers.0.weight", [parameters - 7], 0), ("layers.0.bias", [7], parameters - 7)], copying: $0)
        }
        let stateGroup = moments.withUnsafeBufferPointer {
            CheckpointSnapshot.Group(entries: [("optimizer.adam.m.all", [parameters], 0), ("optimizer.adam.v.all", [parameters], parameters)], copying: $0)
        }
        let metadata = TrainingMetadata(step: step, epoch: step / 10, dataCursor: step * 64, rngState: generator.state, optimizerStepCount: step, worldSize: 4)
        return try CheckpointSnapshot(groups: [parameterGroup, stateGroup], metadata: metadata)
    }

    @Test func saveLoadRestoreAndKeepTheLastK() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try CheckpointStore(directory: dir, keep: 2)
        for step in [10, 20, 30] { try store.save(try Self.snapshot(step: step, seed: UInt64(step))) }
        #expect(store.checkpointPaths().count == 2)
        let (latest, skipped) = store.latestValid()
        #expect(skipped.isEmpty)
        let checkpoint = try #require(latest)
        let expected = try Self.snapshot(step: 30, seed: 30)
        #expect(checkpoint.metadata == expected.metadata)
        var restored = [Float](repeating: 0, count: 37)
        try restored.withUnsafeMutableBufferPointer { try checkpoint.restore(expected.groups[0].entries, into: $0) }
        #expect(restored == expected.groups[0].values)
        var wrong = [Float](repeating: 0, count: 37)
        #expect(throws: CheckpointError.self) {
            try wrong.withUnsafeMutableBufferPointer { try checkpoint.restore([("layers.0.weight", [31], 0)], into: $0) }
        }
        // Our checkpoints are plain safetensors: Python's reader sees every tensor (checked in SafetensorsTests).
        #expect(checkpoint.file.entries.count == 4)
    }

    @Test func corruptOrPartialCheckpointsAreSkippedWithAReason() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try CheckpointStore(directory: dir, keep: 5)
        try store.save(try Self.snapshot(step: 1, seed: 1))
        let second = try store.save(try Self.snapshot(step: 2, seed: 2))
        let third = try store.save(try Self.snapshot(step: 3, seed: 3))
        // Newest: truncated. Second: one data byte flipped. A temporary file of a dead writer: ignored.
        let truncated = try #require(FileManager.default.contents(atPath: third))
        try truncated.prefix(truncated.count - 9).write(to: URL(fileURLWithPath: third))
        var flipped = try #require(FileManager.default.contents(atPath: second))
        flipped[flipped.count - 5] ^= 0x40
        try flipped.write(to: URL(fileURLWithPath: second))
        try Data(repeating: 1, count: 100).write(to: URL(fileURLWithPath: store.path(step: 9) + ".tmp-1234"))
        let (latest, skipped) = store.latestValid()
        #expect(latest?.step == 1)
        #expect(skipped.map(\.code) == [.malformed, .checksumMismatch], "\(skipped)")
    }

    @Test func asyncWriterSavesInTheBackgroundAndFlushes() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let writer = AsyncCheckpointWriter(store: try CheckpointStore(directory: dir, keep: 10))
        for step in 1...5 { try writer.submit(try Self.snapshot(step: step, seed: UInt64(step), parameters: 100_000)) }
        let written = try writer.flush()
        // Every submission is written unless a newer one replaced it before it started.
        #expect(written.count + writer.superseded == 5)
        #expect(written.last?.hasSuffix("step-000000000005.safetensors") == true)
        #expect(writer.store.latestValid().checkpoint?.step == 5)
        try writer.close()
        #expect(throws: CheckpointError.self) { try writer.submit(try Self.snapshot(step: 6, seed: 6)) }
    }

    @Test func writeFailuresAreReported() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try CheckpointStore(directory: dir)
        try FileManager.default.removeItem(atPath: dir)
        #expect(throws: CheckpointError.self) { try store.save(try Self.snapshot(step: 1, seed: 1)) }
        let writer = AsyncCheckpointWriter(store: store)
        try writer.submit(try Self.snapshot(step: 1, seed: 1))
        #expect(throws: CheckpointError.self) { try writer.flush() }
    }
}

extension CheckpointStoreTests {
    @Test func invalidSnapshotsAndStaleTemporariesAreHandled() throws {
        let values: [Float] = [1, 2, 3, 4]
        for entries in [[("x", [2, -1], 0)], [("x", [2], 3)], [("x", [Int.max, 2], 0)], [("x", [1], -1)]] {
            #expect(throws: CheckpointError.self) {
                _ = try CheckpointSnapshot(groups: [values.withUnsafeBufferPointer { .init(entries: entries, copying: $0) }], metadata: TrainingMetadata(step: 1))
            }
        }
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try CheckpointStore(directory: dir)
        // A temporary file of a writer that no longer runs is removed by the next save.
        let stale = store.path(step: 5) + ".tmp-999999"
        try Data(repeating: 7, count: 1000).write(to: URL(fileURLWithPath: stale))
        try store.save(try Self.snapshot(step: 6, seed: 6))
        #expect(!FileManager.default.fileExists(atPath: stale))
    }

    @Test func aFlippedBitInTheMetadataIsDetected() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try CheckpointStore(directory: dir)
        let path = try store.save(try Self.snapshot(step: 12, seed: 1))
        var bytes = try #require(FileManager.default.contents(atPath: path))
        // Turn "\"step\":12" inside the training metadata into "\"step\":13" (found as bytes:
        // the length prefix and the data are not text).
        let range = try #require(bytes.firstRange(of: Data(#"\"step\":12"#.utf8)))
        bytes[range.upperBound - 1] = UInt8(ascii: "3")
        try bytes.write(to: URL(fileURLWithPath: path))
        #expect { _ = try store.load(path: path) } throws: { ($0 as? CheckpointError)?.code == .checksumMismatch }
    }
}
