/// A reproducible random number generator (xoshiro256**) with explicit, saveable state.
///
/// The same seed gives the same sequence on every platform. `state` can be stored in a
/// checkpoint and assigned back to resume the sequence exactly.
public struct SeededGenerator: RandomNumberGenerator, Sendable, Equatable, Codable {
    /// The four 64-bit words of generator state; never all zero. Save it and restore it with
    /// `init(state:)` to resume the sequence exactly.
    public private(set) var state: [UInt64]

    /// Seeds the generator; the state is expanded from `seed` with SplitMix64.
    public init(seed: UInt64) {
        var splitMix = seed
        var words: [UInt64] = []
        for _ in 0..<4 { words.append(SeededGenerator.splitMix64(&splitMix)) }
        if words.allSatisfy({ $0 == 0 }) { words[0] = 0x9E37_79B9_7F4A_7C15 }
        state = words
    }

    /// Restores a generator from saved state.
    /// - Throws: `TensorError.invalidShape` if `state` is not four words or is all zero.
    public init(state: [UInt64]) throws {
        guard state.count == 4, state.contains(where: { $0 != 0 }) else {
            throw TensorError.invalidShape([state.count], reason: "generator state must be 4 words, not all zero")
        }
        self.state = state
    }

    /// Decodes a saved state, validating it as `init(state:)` does.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let words = try container.decode([UInt64].self)
        do { try self.init(state: words) } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "invalid generator state \(words)")
        }
    }

    /// Encodes the state as an array of four words.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(state)
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        let result = rotl(state[1] &* 5, 7) &* 9
        let t = state[1] << 17
        state[2] ^= state[0]
        state[3] ^= state[1]
        state[1] ^= state[2]
        state[0] ^= state[3]
        state[2] ^= t
        state[3] = rotl(state[3], 45)
        return result
    }

    /// A uniform `Float` in `[0, 1)` with 24 random bits.
    public mutating func nextUnitFloat() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// A standard normal sample (Box–Muller, computed in `Double`).
    public mutating func nextNormal() -> Float {
        // u1 in (0, 1] so that log(u1) is finite.
        let u1 = (Double(next() >> 11) + 1.0) * (1.0 / 9_007_199_254_740_992.0)
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        return Float((-2.0 * log(u1)).squareRoot() * cos(2.0 * Double.pi * u2))
    }

    /// One step of SplitMix64, used to expand seeds and derive sub-seeds.
    public static func splitMix64(_ x: inout UInt64) -> UInt64 {
        x &+= 0x9E37_79B9_7F4A_7C15
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
