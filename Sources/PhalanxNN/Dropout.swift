import PhalanxTensor

/// Inverted dropout: in training, zeroes each element with probability `probability` and
/// scales the rest by `1 / (1 - probability)`; in evaluation (`training == false`), the identity.
///
/// The masks are seeded and reproducible. Element `e` of sample `s` in draw `d` is kept or not
/// by a hash of (`seed`, `d`, `s`, `e`) (a counter-based generator, as JAX and Philox do), so
/// a mask depends on no hidden generator state, only on:
/// - `draw`: the random state, advanced by one after every training forward. A training loop
///   that sets it to the step (`Sequential.setRandomStream(draw:firstSample:)`) gets the same
///   masks after a rollback, a resume from a checkpoint (where `ElasticState` keeps it) or a
///   change of members;
/// - `firstSample`: the global index of the batch's first sample, so that data-parallel
///   members splitting one global batch draw the masks one process would.
public final class Dropout: Layer {
    /// The probability of zeroing an element, in `[0, 1)`.
    public let probability: Float
    /// The seed of every mask.
    public let seed: UInt64
    /// Training (masks) or evaluation (identity).
    public var training = true
    /// The random state: the number of training forwards so far (or what a loop set).
    public var draw: Int = 0
    /// The global index of the next batch's first sample.
    public var firstSample: Int = 0
    private var mask: [Float]?
    private var inputShape: [Int]?

    /// A dropout layer.
    /// - Throws: `NNError.invalidHyperparameter` unless `0 ≤ probability < 1`.
    public init(_ probability: Float, seed: UInt64 = 0) throws {
        guard probability >= 0, probability < 1 else {
            throw NNError.invalidHyperparameter(name: "Dropout.probability", value: Double(probability), reason: "must be in [0, 1)")
        }
        self.probability = probability
        self.seed = seed
    }

    /// `[batch, …]` → the same shape, masked and scaled in training.
    public func forward(_ input: Tensor) throws -> Tensor {
        inputShape = input.shape
        guard training, probability > 0, input.count > 0 else {
            mask = nil
            return input
        }
        let batch = max(input.shape.first ?? 1, 1)
        let perSample = input.count / batch
        let scale = 1 / (1 - probability)
        // Keep when the hash's top 24 bits, as a fraction of 2²⁴, reach `probability`.
        let threshold = UInt64((Double(probability) * Double(1 << 24)).rounded())
        var keep = [Float](repeating: 0, count: input.count)
        let drawKey = Self.mix(seed ^ (UInt64(bitPattern: Int64(draw)) &* 0x9E37_79B9_7F4A_7C15))
        for row in 0..<batch {
            let rowKey = Self.mix(drawKey ^ (UInt64(bitPattern: Int64(firstSample + row)) &* 0xC2B2_AE3D_27D4_EB4F))
            for element in 0..<perSample where Self.mix(rowKey &+ UInt64(element)) >> 40 >= threshold {
                keep[row * perSample + element] = scale
            }
        }
        draw += 1
        mask = keep
        return try Tensor(shape: input.shape, scalars: zip(input.scalars, keep).map { $0 * $1 })
    }

    /// The same mask and scale on the gradient (the identity in evaluation).
    public func backward(_ outputGradient: Tensor, options: BackwardOptions) throws -> Tensor? {
        guard let inputShape else { throw NNError.noForward(layer: "Dropout") }
        guard outputGradient.shape == inputShape else {
            throw TensorError.shapeMismatch(operation: "Dropout.backward", lhs: outputGradient.shape, rhs: inputShape)
        }
        guard options.needsInputGradient else { return nil }
        guard let mask else { return outputGradient }
        return try Tensor(shape: inputShape, scalars: zip(outputGradient.scalars, mask).map { $0 * $1 })
    }

    /// SplitMix64's finaliser: a bijective mix of 64 bits.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
