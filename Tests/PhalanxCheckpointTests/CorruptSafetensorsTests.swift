import Foundation
import PhalanxCheckpoint
import Testing

/// Every kind of damage gives a `CheckpointError`, never a crash, an over-read or a huge allocation.
@Suite struct CorruptSafetensorsTests {
    static func file(header: String, data: [UInt8], lengthOverride: UInt64? = nil) -> [UInt8] {
        let json = Array(header.utf8)
        var length = (lengthOverride ?? UInt64(json.count)).littleEndian
        return withUnsafeBytes(of: &length) { Array($0) } + json + data
    }

    static let good = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#

    static let cases: [(String, [UInt8])] = [
        ("empty file", []),
        ("shorter than the length field", [1, 0, 0]),
        ("header length past the end", file(header: good, data: [UInt8](repeating: 0, count: 8), lengthOverride: 1000)),
        ("enormous header length", file(header: good, data: [], lengthOverride: UInt64.max)),
        ("truncated data", file(header: good, data: [0, 0, 0])),
        ("bad JSON", file(header: #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]"#, data: [UInt8](repeating: 0, count: 8))),
        ("not an object", file(header: "[1, 2]", data: [])),
        ("offsets past the data", file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,800]}}"#, data: [UInt8](repeating: 0, count: 8))),
        ("reversed offsets", file(header: #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}"#, data: [UInt8](repeating: 0, count: 8))),
        ("shape disagrees with bytes", file(header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8))),
        ("overlapping entries", file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: [UInt8](repeating: 0, count: 8))),
        ("a hole", file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: [UInt8](repeating: 0, count: 8))),
        ("enormous shape", file(header: #"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8))),
        ("negative shape", file(header: #"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8))),
        ("fractional offset", file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,7.5]}}"#, data: [UInt8](repeating: 0, count: 8))),
        ("unknown dtype", file(header: #"{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8))),
        ("missing fields", file(header: #"{"a":{"dtype":"F32"}}"#, data: [])),
        ("bad metadata", file(header: #"{"__metadata__":{"step":7}}"#, data: [])),
    ]

    @Test(arguments: cases.map(\.0))
    func damagedFileIsAnError(name: String) throws {
        let bytes = try #require(Self.cases.first { $0.0 == name }?.1)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("phalanx-bad-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        #expect(throws: CheckpointError.self, "\(name)") { _ = try SafetensorsFile(path: path) }
    }

    @Test func missingFileIsAnIOError() {
        #expect { _ = try SafetensorsFile(path: "/nonexistent/x.safetensors") } throws: { ($0 as? CheckpointError)?.code == .io }
    }
}

extension CorruptSafetensorsTests {
    @Test func anEmptyTensorCannotHideAHole() throws {
        let header = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"e":{"dtype":"F32","shape":[0],"data_offsets":[8,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("phalanx-hole-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(Self.file(header: header, data: [UInt8](repeating: 0, count: 12)))))
        #expect(throws: CheckpointError.self) { _ = try SafetensorsFile(path: path) }
    }
}
