import Foundation
import PhalanxTensor

/// The UCI "Optical Recognition of Handwritten Digits" data shipped with Phalanx: 1797 samples
/// of 8×8 pixels with values 0…16 and labels 0…9 (see `OPTDIGITS.md` for attribution, CC BY 4.0).
public enum DigitsDataset {
    /// The number of samples in the shipped file.
    public static let sampleCount = 1797
    /// Pixels per sample (8×8).
    public static let featureCount = 64

    /// The path of the shipped CSV file (`64 pixels, label` per line).
    /// - Throws: `DataError.unreadable` if the resource bundle is missing.
    public static func resourcePath() throws -> String { try ShippedFile.path("optdigits", "csv") }

    /// Loads the shipped digits, pixels scaled to [0, 1]: features `[1797, 64]`.
    /// - Throws: `DataError` if the file is missing or malformed.
    public static func load() throws -> InMemoryDataset {
        try load(path: try resourcePath())
    }

    /// Loads digits from a CSV file of 65 integer fields per line (64 pixels 0…16, then the label 0…9).
    /// - Throws: `DataError.unreadable` or `.malformed` (naming the line) for bad files.
    public static func load(path: String) throws -> InMemoryDataset {
        let text = try ShippedFile.text(at: path)
        var pixels: [Float] = []
        var labels: [Int] = []
        for (number, line) in text.split(whereSeparator: \.isNewline).enumerated() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count == featureCount + 1 else {
                throw DataError.malformed(source: path, reason: "line \(number + 1) has \(fields.count) fields, expected \(featureCount + 1)")
            }
            for field in fields.prefix(featureCount) {
                guard let value = Int(field.trimmingCharacters(in: .whitespaces)), (0...16).contains(value) else {
                    throw DataError.malformed(source: path, reason: "line \(number + 1): pixel '\(field)' is not an integer 0…16")
                }
                pixels.append(Float(value) / 16)
            }
            guard let label = Int(fields[featureCount].trimmingCharacters(in: .whitespaces)), (0...9).contains(label) else {
                throw DataError.malformed(source: path, reason: "line \(number + 1): label '\(fields[featureCount])' is not 0…9")
            }
            labels.append(label)
        }
        guard !labels.isEmpty else { throw DataError.malformed(source: path, reason: "no samples") }
        return try InMemoryDataset(
            features: try Tensor(shape: [labels.count, featureCount], scalars: pixels), labels: labels, classCount: 10)
    }
}
