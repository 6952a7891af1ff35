import PhalanxData
import PhalanxTensor
import Testing

/// The character corpus: the shipped text, ids and back, windows whose labels are the next
/// characters, and clear errors.
@Suite struct CharacterCorpusTests {
    @Test func theShippedTextLoads() throws {
        let corpus = try CharacterCorpus.shakespeare()
        #expect(corpus.ids.count == 1_115_394)
        #expect(corpus.vocabulary.count == 65)
        #expect(corpus.decode(Array(corpus.ids.prefix(14))) == "First Citizen:")
    }

    @Test func idsRoundTripAndUnknownCharactersAreNamed() throws {
        let corpus = try CharacterCorpus(text: "hello world")
        #expect(corpus.vocabulary.map { Character($0) } == [" ", "d", "e", "h", "l", "o", "r", "w"])
        #expect(corpus.decode(try corpus.encode("world hello")) == "world hello")
        #expect(throws: DataError.self) { try corpus.encode("help") }
        #expect(throws: DataError.self) { try CharacterCorpus(text: "") }
    }

    @Test func windowsPredictTheNextCharacter() throws {
        let corpus = try CharacterCorpus(text: "abcdefghij")
        let windows = try corpus.windows(length: 3, in: 0..<10)
        #expect(windows.count == 3 && windows.labelsPerSample == 3)
        #expect(windows.features.shape == [3, 3])
        let (x, labels) = try windows.batch([1])
        #expect(corpus.decode(x.scalars.map { Int($0) }) == "def")
        #expect(corpus.decode(labels) == "efg")
        #expect(throws: DataError.self) { try corpus.windows(length: 10, in: 0..<10) }
        // Overlapping windows, one every 2 characters: starts 0, 2, 4, 6.
        let overlapping = try corpus.windows(length: 3, stride: 2, in: 0..<10)
        #expect(overlapping.count == 4)
        #expect(corpus.decode(try overlapping.batch([3]).features.scalars.map { Int($0) }) == "ghi")
        #expect(corpus.decode(try overlapping.batch([3]).labels) == "hij")
        #expect(throws: DataError.self) { try corpus.windows(length: 3, stride: 0, in: 0..<10) }
    }

    @Test func theSplitCutsTheTextWithoutOverlap() throws {
        let corpus = try CharacterCorpus(text: String(repeating: "abcdefghijklmnopqrstuvwxyz", count: 4))
        let (train, test) = try corpus.split(length: 5, trainFraction: 0.75)
        #expect(train.count == (78 - 1) / 5 && test.count == (26 - 1) / 5)
        #expect(corpus.decode(try test.batch([0]).features.scalars.map { Int($0) }) == "abcde")
        #expect(throws: DataError.self) { try corpus.split(length: 5, trainFraction: 1) }
    }
}
