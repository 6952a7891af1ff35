import Foundation
@_spi(Benchmarking) @testable import PhalanxCheckpoint
import PhalanxTensor
import Testing

/// The checkpoint checksum: XXH3-128 against xxHash's published vectors, and every flipped bit
/// (and pair of bits) anywhere in a checkpoint file is refused.
@Suite struct CheckpointIntegrityTests {
    /// xxHash's sanity-test buffer (cli/xsum_sanity_check.c): byte i is the top byte of
    /// 2654435761 · 11400714785074694797^i (mod 2⁶⁴).
    static func sanityBuffer(_ count: Int) -> [UInt8] {
        var generator: UInt64 = 2_654_435_761
        return (0..<count).map { _ in
            defer { generator = generator &* 11_400_714_785_074_694_797 }
            return UInt8(truncatingIfNeeded: generator >> 56)
        }
    }

    @Test func xxh3128MatchesThePublishedVectors() throws {
        // XSUM_XXH128_testdata, seed 0: (length, low 64 bits, high 64 bits).
        let vectors: [(Int, UInt64, UInt64)] = [
            (0, 0x6001_C324_468D_497F, 0x99AA_06D3_0147_98D8), (1, 0xC44B_DFF4_074E_ECDB, 0xA6CD_5E93_9200_0F6A),
            (6, 0x3E70_39BD_DA43_CFC6, 0x082A_FE0B_8162_D12A), (12, 0x061A_1927_13F6_9AD9, 0x6E3E_FD8F_C780_2B18),
            (24, 0x1E70_44D2_8B1B_901D, 0x0CE9_66E4_678D_3761), (48, 0xF942_219A_ED80_F67B, 0xA002_AC4E_5478_227E),
            (81, 0x5E8B_AFB9_F95F_B803, 0x4952_F581_81AB_0042), (222, 0xF1AE_BD59_7CEC_6B3A, 0x337E_0964_1B94_8717),
            (403, 0xCDEB_804D_65C6_DEA4, 0x1B6D_E21E_332D_D73D), (512, 0x617E_4959_9013_CB6B, 0x18D2_D110_DCC9_BCA1),
            (2048, 0xDD59_E2C3_A5F0_38E0, 0xF736_557F_D470_73A5), (2240, 0x6E73_A905_39CF_2948, 0xCCB1_34FB_FA7C_E49D),
            (2367, 0xCB37_AEB9_E5D3_61ED, 0xE89C_0F6F_F369_B427),
        ]
        let buffer = Self.sanityBuffer(2367)
        for (length, low, high) in vectors {
            let expected = FileDigest.hex(high) + FileDigest.hex(low)
            #expect(try buffer[..<length].withUnsafeBytes { try FileDigest.of($0) } == expected, "length \(length)")
            // Fed in uneven pieces, the stream gives the same digest.
            let digest = try FileDigest()
            var start = 0, piece = 1
            while start < length {
                let end = min(length, start + piece)
                buffer[start..<end].withUnsafeBytes { digest.update($0) }
                start = end
                piece = piece * 3 % 97 + 1
            }
            #expect(digest.hex == expected, "length \(length) in pieces")
        }
        #expect(try Array("abc".utf8).withUnsafeBytes { try FileDigest.of($0) } == "06b05ab6733a618578af5f94892f3950")
    }

    /// A small checkpoint file's bytes, and a scratch path to write variants to.
    static func checkpoint() throws -> (bytes: [UInt8], path: String, store: CheckpointStore) {
        let directory = CheckpointStoreTests.directory()
        let store = try CheckpointStore(directory: directory, keep: 1)
        let path = try store.save(try CheckpointStoreTests.snapshot(step: 12, seed: 3, parameters: 19))
        let bytes = try #require(FileManager.default.contents(atPath: path))
        return ([UInt8](bytes), directory + "/variant.safetensors", store)
    }

    /// Whether the store refuses `bytes` (written to `path`) with a typed error.
    static func refused(_ bytes: [UInt8], at path: String, by store: CheckpointStore) throws -> Bool {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        do {
            _ = try store.load(path: path)
            return false
        } catch is CheckpointError {
            return true
        }
    }

    @Test func everySingleBitFlipAnywhereIsRefused() throws {
        let (bytes, path, store) = try Self.checkpoint()
        defer { try? FileManager.default.removeItem(atPath: store.directory) }
        #expect(try !Self.refused(bytes, at: path, by: store), "the intact file loads")
        var missed: [Int] = []
        for bit in 0..<(8 * bytes.count) {
            var flipped = bytes
            flipped[bit / 8] ^= 1 << UInt8(bit % 8)
            if try !Self.refused(flipped, at: path, by: store) { missed.append(bit) }
        }
        #expect(missed.isEmpty, "\(missed.count) of \(8 * bytes.count) single-bit flips loaded: bits \(missed.prefix(10))")
    }

    @Test func pairsOfFlippedBitsAreRefused() throws {
        let (bytes, path, store) = try Self.checkpoint()
        defer { try? FileManager.default.removeItem(atPath: store.directory) }
        let bits = 8 * bytes.count
        var generator = SeededGenerator(seed: 2026)
        var pairs: [(Int, Int)] = (0..<3000).map { _ in
            let first = Int.random(in: 0..<bits, using: &generator)
            return (first, (first + Int.random(in: 1..<bits, using: &generator)) % bits)
        }
        // And every pair inside the header's length prefix and the first stored digit, and
        // every pair of neighbouring bits (a burst of two) anywhere.
        let digits = try #require(bytes.withUnsafeBytes { CheckpointChecksum.digits(in: $0) })
        let region = Array(0..<64) + Array((8 * digits.lowerBound)..<(8 * digits.lowerBound + 8))
        for (index, first) in region.enumerated() { for second in region[(index + 1)...] { pairs.append((first, second)) } }
        for first in 0..<(bits - 1) { pairs.append((first, first + 1)) }
        var missed: [(Int, Int)] = []
        for (first, second) in pairs {
            var flipped = bytes
            flipped[first / 8] ^= 1 << UInt8(first % 8)
            flipped[second / 8] ^= 1 << UInt8(second % 8)
            if try !Self.refused(flipped, at: path, by: store) { missed.append((first, second)) }
        }
        #expect(missed.isEmpty, "\(missed.count) of \(pairs.count) two-bit flips loaded: \(missed.prefix(10))")
    }

    @Test func theChecksumCoversTheHeaderAndNamesBothDigests() throws {
        let (bytes, path, store) = try Self.checkpoint()
        defer { try? FileManager.default.removeItem(atPath: store.directory) }
        // The world size inside the training metadata: 4 → 5 (found as bytes: the data is not text).
        let pattern = Array(#"\"worldSize\":4"#.utf8)
        let range = try #require(bytes.firstRange(of: pattern))
        var changed = bytes
        changed[range.upperBound - 1] = UInt8(ascii: "5")
        try Data(changed).write(to: URL(fileURLWithPath: path))
        #expect { _ = try store.load(path: path) } throws: { error in
            guard let error = error as? CheckpointError, error.code == .checksumMismatch else { return false }
            return "\(error)".contains("XXH3-128")
        }
    }
}
