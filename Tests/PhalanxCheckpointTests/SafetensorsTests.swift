import Foundation
import PhalanxCheckpoint
import PhalanxTensor
import Testing

@Suite struct SafetensorsTests {
    static func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("phalanx-st-\(UUID().uuidString)-\(name)").path
    }

    @Test func roundTripOfOddShapesAndManyTensors() throws {
        var generator = SeededGenerator(seed: 3)
        let shapes: [[Int]] = [[1], [1, 1], [7], [3, 5], [0, 4], [2, 3, 5], [13, 1], [], [1, 97]]
        var tensors: [(String, Tensor)] = []
        for (i, shape) in shapes.enumerated() {
            tensors.append(("layers.\(i).weight/ünï", try Tensor.normal(shape, generator: &generator)))
        }
        for i in 0..<200 { tensors.append(("many.\(i)", try Tensor.uniform([i % 5 + 1], generator: &generator))) }
        let path = Self.temporaryPath("roundtrip.safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try withSources(tensors) { try SafetensorsWriter.write($0, metadata: ["step": "7", "note": "ok"], toPath: path) }
        let file = try SafetensorsFile(path: path)
        #expect(file.metadata == ["step": "7", "note": "ok"])
        #expect(file.entries.count == tensors.count)
        for (name, tensor) in tensors {
            let loaded = try file.tensor(named: name)
            #expect(loaded.shape == tensor.shape, "\(name)")
            #expect(loaded.scalars == tensor.scalars, "\(name)")
        }
        #expect(throws: CheckpointError.self) { try file.tensor(named: "absent") }
        var wrongSize = [Float](repeating: 0, count: 2)
        #expect(throws: CheckpointError.self) { try wrongSize.withUnsafeMutableBufferPointer { try file.read(named: "many.0", into: $0) } }
    }

    func withSources(_ tensors: [(String, Tensor)], _ body: ([SafetensorsSource]) throws -> Void) throws {
        var sources: [SafetensorsSource] = []
        var retained: [[Float]] = tensors.map { $0.1.scalars }
        try retained.withUnsafeMutableBufferPointer { arrays in
            for (i, (name, tensor)) in tensors.enumerated() {
                let pointer = arrays[i].withUnsafeBufferPointer { $0 }
                sources.append(SafetensorsSource(name: name, shape: tensor.shape, values: pointer))
            }
            try body(sources)
        }
    }

    /// A file written by Python's `safetensors` (Tests/PhalanxCheckpointTests/Resources/make_fixture.py).
    @Test func readsAFileWrittenByPythonSafetensors() throws {
        let url = try #require(Bundle.module.url(forResource: "python_written", withExtension: "safetensors"))
        let file = try SafetensorsFile(path: url.path)
        #expect(file.metadata == ["step": "42", "writer": "safetensors-python"])
        #expect(try file.tensor(named: "a") == (try Tensor(rows: [[-0.5, -0.25, 0], [0.25, 0.5, 0.75]])))
        #expect(try file.tensor(named: "b").scalars == [1.5, -2.25, Float(1e-3 as Double), 3e5])
        #expect(try file.tensor(named: "c").scalars == [0.5, -1.0, 65504.0])
        #expect(try file.tensor(named: "d") == (try Tensor(shape: [2, 2], scalars: [1, -2, 0.15625, Float(2.9907629905160607e38)])))
        #expect(try file.tensor(named: "empty").shape == [0, 3])
    }

    /// Files we write load in Python's `safetensors` with the same values.
    @Test func pythonReadsWhatWeWrite() throws {
        let path = Self.temporaryPath("for-python.safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let tensors: [(String, Tensor)] = [("w", try Tensor(rows: [[1, 2, 3], [4, 5, 6.5]])), ("b", Tensor([-1, 0.25])), ("e", try Tensor.zeros([0, 2]))]
        try withSources(tensors) { try SafetensorsWriter.write($0, metadata: ["step": "3"], toPath: path) }
        let script = """
            import sys, numpy as np
            from safetensors.numpy import load_file
            from safetensors import safe_open
            t = load_file(sys.argv[1])
            assert t["w"].dtype == np.float32 and t["w"].shape == (2, 3), t["w"]
            assert t["w"].tolist() == [[1, 2, 3], [4, 5, 6.5]], t["w"]
            assert t["b"].tolist() == [-1, 0.25] and t["e"].shape == (0, 2)
            with safe_open(sys.argv[1], "np") as f: assert f.metadata() == {"step": "3"}, f.metadata()
            print("python-ok")
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0 && output.contains("python-ok"), "\(output)")
    }
}
