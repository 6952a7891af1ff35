import Foundation
import PhalanxTensor

/// Reads MNIST-style IDX files (the format of Yann LeCun's MNIST and Fashion-MNIST files,
/// uncompressed): images `0x00000803` (uint8, `[n, rows, cols]`) and labels `0x00000801` (uint8, `[n]`).
public enum MNISTLoader {
    /// Loads an image file and its label file into a dataset with features `[n, rows·cols]`
    /// scaled to [0, 1] and 10 classes.
    /// - Throws: `DataError.unreadable` / `.malformed` for missing, truncated or inconsistent files.
    public static func load(imagesPath: String, labelsPath: String) throws -> InMemoryDataset {
        let images = try readIDX(path: imagesPath, expectedMagic: 0x0000_0803, dimensions: 3)
        let labels = try readIDX(path: labelsPath, expectedMagic: 0x0000_0801, dimensions: 1)
        guard images.shape[0] == labels.shape[0] else {
            throw DataError.malformed(source: labelsPath, reason: "\(labels.shape[0]) labels for \(images.shape[0]) images in \(imagesPath)")
        }
        let pixelsPerImage = images.shape[1] * images.shape[2]
        let features = images.bytes.map { Float($0) / 255 }
        let labelValues = labels.bytes.map(Int.init)
        if let bad = labelValues.firstIndex(where: { $0 > 9 }) {
            throw DataError.malformed(source: labelsPath, reason: "label \(labelValues[bad]) at index \(bad) is not 0…9")
        }
        return try InMemoryDataset(
            features: try Tensor(shape: [images.shape[0], pixelsPerImage], scalars: features), labels: labelValues, classCount: 10)
    }

    /// The raw content of one IDX file of unsigned bytes.
    struct IDXFile {
        var shape: [Int]
        var bytes: [UInt8]
    }

    /// Reads an IDX file of `uint8` with the given magic number and number of dimensions,
    /// checking the declared sizes against the file's length before reading any data.
    static func readIDX(path: String, expectedMagic: UInt32, dimensions: Int) throws -> IDXFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError.unreadable(path: path, reason: "no such file or not readable")
        }
        let headerSize = 4 + 4 * dimensions
        guard data.count >= headerSize else {
            throw DataError.malformed(source: path, reason: "\(data.count) bytes is shorter than the \(headerSize)-byte IDX header")
        }
        let bytes = [UInt8](data)
        func bigEndian(_ offset: Int) -> UInt32 {
            bytes[offset..<(offset + 4)].reduce(0) { ($0 << 8) | UInt32($1) }
        }
        let magic = bigEndian(0)
        guard magic == expectedMagic else {
            throw DataError.malformed(
                source: path,
                reason: "magic 0x\(String(magic, radix: 16)) is not 0x\(String(expectedMagic, radix: 16)) (uint8, \(dimensions)-D)")
        }
        var shape: [Int] = []
        var total = 1
        for d in 0..<dimensions {
            let extent = Int(bigEndian(4 + 4 * d))
            shape.append(extent)
            let (product, overflow) = total.multipliedReportingOverflow(by: extent)
            guard !overflow else { throw DataError.malformed(source: path, reason: "declared shape \(shape) overflows") }
            total = product
        }
        // Each sample's size must be representable too (a file may declare 0 samples of a huge size).
        var perSample = 1
        for extent in shape.dropFirst() {
            let (product, overflow) = perSample.multipliedReportingOverflow(by: extent)
            guard !overflow, product <= Int(Int32.max) else {
                throw DataError.malformed(source: path, reason: "declared sample shape \(Array(shape.dropFirst())) is too large")
            }
            perSample = product
        }
        guard data.count - headerSize == total else {
            throw DataError.malformed(
                source: path, reason: "declared shape \(shape) needs \(total) data bytes, file has \(data.count - headerSize)")
        }
        return IDXFile(shape: shape, bytes: Array(bytes[headerSize...]))
    }
}
