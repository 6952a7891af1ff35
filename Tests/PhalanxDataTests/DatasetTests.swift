import Foundation
import PhalanxData
import PhalanxTensor
import Testing

@Suite struct DatasetTests {
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("phalanx-data-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func shippedDigitsLoad() throws {
        let digits = try DigitsDataset.load()
        #expect(digits.count == 1797)
        #expect(digits.featureShape == [64])
        #expect(digits.classCount == 10)
        #expect(digits.features.scalars.allSatisfy { $0 >= 0 && $0 <= 1 })
        var counts = [Int](repeating: 0, count: 10)
        for label in digits.labels { counts[label] += 1 }
        #expect(counts == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
        let (train, test) = try digits.split(trainFraction: 0.8, seed: 1)
        #expect(train.count == 1438 && test.count == 359)
        let batch = try train.batch([0, 5, 7])
        #expect(batch.features.shape == [3, 64])
        #expect(batch.labels == [train.labels[0], train.labels[5], train.labels[7]])
        #expect(throws: DataError.indexOutOfRange(index: 1438, count: 1438)) { try train.batch([1438]) }
    }

    @Test func malformedDigitsFilesAreErrors() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let row = Array(repeating: "3", count: 64).joined(separator: ",")
        let cases = ["\(row)\n\(row)", "\(row),10", "\(row.dropLast()),x,1", "", "1,2,3"]
        for (i, text) in cases.enumerated() {
            let path = directory.appendingPathComponent("bad\(i).csv").path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            #expect(throws: DataError.self) { try DigitsDataset.load(path: path) }
        }
        #expect(throws: DataError.self) { try DigitsDataset.load(path: directory.appendingPathComponent("missing.csv").path) }
        let good = directory.appendingPathComponent("good.csv").path
        try "\(row),7\n".write(toFile: good, atomically: true, encoding: .utf8)
        let one = try DigitsDataset.load(path: good)
        #expect(one.labels == [7])
        #expect(one.features.scalars.allSatisfy { $0 == 3 / 16 })
    }

    static func idx(magic: UInt32, dimensions: [UInt32], payload: [UInt8]) -> Data {
        var bytes: [UInt8] = []
        func put(_ v: UInt32) { bytes += [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }
        put(magic)
        dimensions.forEach(put)
        return Data(bytes + payload)
    }

    @Test func mnistIDXFilesLoad() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let images = directory.appendingPathComponent("images.idx").path
        let labels = directory.appendingPathComponent("labels.idx").path
        // Three 2×3 images with pixels 0, 1, …, 17 and labels 7, 0, 9.
        try Self.idx(magic: 0x803, dimensions: [3, 2, 3], payload: (0..<18).map(UInt8.init)).write(to: URL(fileURLWithPath: images))
        try Self.idx(magic: 0x801, dimensions: [3], payload: [7, 0, 9]).write(to: URL(fileURLWithPath: labels))
        let data = try MNISTLoader.load(imagesPath: images, labelsPath: labels)
        #expect(data.features.shape == [3, 6])
        #expect(data.labels == [7, 0, 9])
        #expect(data.features[1, 2] == Float(8) / 255)

        let bad: [(String, Data)] = [
            ("truncated", Self.idx(magic: 0x803, dimensions: [3, 2, 3], payload: Array(repeating: 0, count: 17))),
            ("too long", Self.idx(magic: 0x803, dimensions: [3, 2, 3], payload: Array(repeating: 0, count: 19))),
            ("wrong magic", Self.idx(magic: 0x801, dimensions: [3, 2, 3], payload: Array(repeating: 0, count: 18))),
            ("huge declared size", Self.idx(magic: 0x803, dimensions: [0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF], payload: [])),
            ("short header", Data([0, 0, 8])),
            ("no images of a huge size", Self.idx(magic: 0x803, dimensions: [0, 0xFFFF_FFFF, 0xFFFF_FFFF], payload: [])),
        ]
        for (name, bytes) in bad {
            let path = directory.appendingPathComponent("\(name).idx").path
            try bytes.write(to: URL(fileURLWithPath: path))
            #expect(throws: DataError.self, "\(name)") { try MNISTLoader.load(imagesPath: path, labelsPath: labels) }
        }
        // Label count that disagrees, and a label above 9.
        try Self.idx(magic: 0x801, dimensions: [2], payload: [1, 2]).write(to: URL(fileURLWithPath: labels))
        #expect(throws: DataError.self) { try MNISTLoader.load(imagesPath: images, labelsPath: labels) }
        try Self.idx(magic: 0x801, dimensions: [3], payload: [1, 2, 10]).write(to: URL(fileURLWithPath: labels))
        #expect(throws: DataError.self) { try MNISTLoader.load(imagesPath: images, labelsPath: labels) }
    }
}
