import PhalanxTensor

/// How a parameter is initialised.
public enum ParameterInitializer: Sendable, Equatable {
    /// All zeros.
    case zeros
    /// All the same value.
    case constant(Float)
    /// Uniform in ±√(6 / fanIn) (He et al., for ReLU networks).
    case kaimingUniform(fanIn: Int)
    /// Normal with standard deviation √(2 / fanIn).
    case kaimingNormal(fanIn: Int)
    /// Uniform in ±√(6 / (fanIn + fanOut)) (Glorot & Bengio).
    case xavierUniform(fanIn: Int, fanOut: Int)
    /// Uniform in ±1/√fanIn (PyTorch's default for `nn.Linear`).
    case lecunUniform(fanIn: Int)
    /// Normal with mean 0 and this standard deviation (PyTorch's `nn.Embedding` uses 1).
    case normal(standardDeviation: Float)

    /// Fills `count` elements at `values`, drawing from `generator`.
    public func fill(_ values: UnsafeMutablePointer<Float>, count: Int, generator: inout SeededGenerator) {
        func uniform(_ bound: Float) {
            for i in 0..<count { values[i] = (2 * generator.nextUnitFloat() - 1) * bound }
        }
        switch self {
        case .zeros: values.update(repeating: 0, count: count)
        case let .constant(v): values.update(repeating: v, count: count)
        case let .kaimingUniform(fanIn): uniform((6 / Float(max(fanIn, 1))).squareRoot())
        case let .kaimingNormal(fanIn):
            let std = (2 / Float(max(fanIn, 1))).squareRoot()
            for i in 0..<count { values[i] = std * generator.nextNormal() }
        case let .xavierUniform(fanIn, fanOut): uniform((6 / Float(max(fanIn + fanOut, 1))).squareRoot())
        case let .lecunUniform(fanIn): uniform(1 / Float(max(fanIn, 1)).squareRoot())
        case let .normal(std):
            for i in 0..<count { values[i] = std * generator.nextNormal() }
        }
    }
}

/// One parameter a layer asks for: a local name ("weight"), a shape and an initialiser.
public struct ParameterSpec: Sendable, Equatable {
    /// The name inside the layer, e.g. "weight"; the model prefixes it ("layers.0.weight").
    public var name: String
    /// The parameter's shape, e.g. `[out, in]` for a linear weight.
    public var shape: [Int]
    /// How to fill it when the model is created.
    public var initializer: ParameterInitializer

    /// Makes a spec.
    public init(name: String, shape: [Int], initializer: ParameterInitializer) {
        self.name = name
        self.shape = shape
        self.initializer = initializer
    }

    /// The number of elements.
    public var count: Int { shape.reduce(1, *) }
}

/// A layer's view of one parameter inside the model's flat buffers.
///
/// The slot keeps the buffers alive, so the pointers stay valid as long as the layer holds it.
public struct ParameterSlot: @unchecked Sendable {
    /// The full name, e.g. "layers.0.weight".
    public let name: String
    /// The parameter's shape.
    public let shape: [Int]
    /// The offset of the first element in the flat buffers, in elements.
    public let offset: Int
    /// The owning buffers (kept alive by the slot).
    public let store: ParameterStore

    /// Makes a slot over `store` at `offset`.
    public init(name: String, shape: [Int], offset: Int, store: ParameterStore) {
        self.name = name
        self.shape = shape
        self.offset = offset
        self.store = store
    }

    /// The number of elements.
    public var count: Int { shape.reduce(1, *) }
    /// The parameter values (`count` elements).
    public var values: UnsafeMutablePointer<Float> { store.values.baseAddress + offset }
    /// The gradient (`count` elements).
    public var gradients: UnsafeMutablePointer<Float> { store.gradients.baseAddress + offset }
}
