import Foundation
import PhalanxTensor

/// A text as a sequence of character ids, for character-level language models: the vocabulary
/// is the text's distinct Unicode scalars in sorted order, and training samples are windows
/// whose labels are the next character at every position.
///
/// ```swift
/// let corpus = try CharacterCorpus.shakespeare()
/// let (train, test) = try corpus.split(length: 64, trainFraction: 0.9)
/// ```
public struct CharacterCorpus: Sendable {
    /// The distinct characters, sorted: id `i` is `vocabulary[i]`.
    public let vocabulary: [Unicode.Scalar]
    /// The text as ids.
    public let ids: [Int]
    private let index: [Unicode.Scalar: Int]

    /// Makes a corpus of `text`.
    /// - Throws: `DataError.malformed` for an empty text.
    public init(text: String) throws {
        let scalars = Array(text.unicodeScalars)
        guard !scalars.isEmpty else { throw DataError.malformed(source: "CharacterCorpus", reason: "the text is empty") }
        vocabulary = Set(scalars).sorted { $0.value < $1.value }
        var index: [Unicode.Scalar: Int] = [:]
        for (id, scalar) in vocabulary.enumerated() { index[scalar] = id }
        self.index = index
        ids = scalars.map { index[$0] ?? 0 }
    }

    /// The path of the shipped text (`tinyshakespeare.txt`, public domain; see `TINYSHAKESPEARE.md`).
    /// - Throws: `DataError.unreadable` if the resource bundle is missing.
    public static func shakespeareResourcePath() throws -> String { try ShippedFile.path("tinyshakespeare", "txt") }

    /// The shipped Shakespeare text: 1,115,394 characters, 65 distinct.
    /// - Throws: `DataError` if it is missing or unreadable.
    public static func shakespeare() throws -> CharacterCorpus { try load(path: try shakespeareResourcePath()) }

    /// A UTF-8 text file.
    /// - Throws: `DataError.unreadable` or `.malformed` (empty).
    public static func load(path: String) throws -> CharacterCorpus {
        try CharacterCorpus(text: try ShippedFile.text(at: path))
    }

    /// The ids of `text`.
    /// - Throws: `DataError.malformed` naming a character outside the vocabulary.
    public func encode(_ text: String) throws -> [Int] {
        try text.unicodeScalars.enumerated().map { position, scalar in
            guard let id = index[scalar] else {
                throw DataError.malformed(source: "CharacterCorpus.encode", reason: "character \(scalar.escaped(asASCII: true)) at \(position) is not in the vocabulary")
            }
            return id
        }
    }

    /// The text of `ids` (ids outside the vocabulary become U+FFFD).
    public func decode(_ ids: [Int]) -> String {
        var view = String.UnicodeScalarView()
        for id in ids { view.append(vocabulary.indices.contains(id) ? vocabulary[id] : "\u{FFFD}") }
        return String(view)
    }

    /// Windows of `length` ids from `range` of the text, one every `stride` characters (the
    /// default, `length`, makes them disjoint; a smaller stride gives more, overlapping
    /// windows, starting at more offsets): features `[n, length]` (ids as whole-number floats,
    /// what `Embedding` takes) and, per window, the `length` ids that follow each position (labels).
    /// - Throws: `DataError.malformed` when the range holds no full window or the stride is not positive.
    public func windows(length: Int, stride: Int? = nil, in range: Range<Int>) throws -> InMemoryDataset {
        let range = range.clamped(to: ids.indices)
        let stride = stride ?? length
        guard length > 0, stride > 0, range.count > length else {
            throw DataError.malformed(source: "CharacterCorpus.windows", reason: "\(range.count) characters hold no window of \(length) and its next character (stride \(stride))")
        }
        let count = (range.count - 1 - length) / stride + 1
        var features = [Float](), labels = [Int]()
        features.reserveCapacity(count * length)
        labels.reserveCapacity(count * length)
        for window in 0..<count {
            let start = range.lowerBound + window * stride
            features.append(contentsOf: ids[start..<(start + length)].map(Float.init))
            labels.append(contentsOf: ids[(start + 1)...(start + length)])
        }
        return try InMemoryDataset(features: try Tensor(shape: [count, length], scalars: features), labels: labels, classCount: vocabulary.count, labelsPerSample: length)
    }

    /// The first `trainFraction` of the text as training windows (one every `stride`
    /// characters), the rest held out in disjoint windows (a cut in the text, not a shuffle: no
    /// held-out window overlaps a training one).
    /// - Throws: `DataError.malformed` for a fraction outside (0, 1) or too little text.
    public func split(length: Int, trainFraction: Double, stride: Int? = nil) throws -> (train: InMemoryDataset, test: InMemoryDataset) {
        guard trainFraction > 0, trainFraction < 1 else {
            throw DataError.malformed(source: "CharacterCorpus.split", reason: "trainFraction \(trainFraction) outside (0, 1)")
        }
        let cut = Int(Double(ids.count) * trainFraction)
        return (try windows(length: length, stride: stride, in: 0..<cut), try windows(length: length, in: cut..<ids.count))
    }
}
