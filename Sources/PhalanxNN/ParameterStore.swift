import PhalanxTensor

/// A model's parameters and gradients: one flat buffer each, with a shared named layout.
///
/// The gradient buffer is what data-parallel training all-reduces in one call per step.
public final class ParameterStore: @unchecked Sendable {
    /// Where each named parameter lives in both buffers.
    public let layout: ParameterLayout
    /// All parameter values, `layout.totalCount` elements.
    public let values: FlatBuffer
    /// All gradients, same layout as `values`.
    public let gradients: FlatBuffer

    /// Allocates zeroed buffers for `layout`.
    public init(layout: ParameterLayout) {
        self.layout = layout
        values = FlatBuffer(count: layout.totalCount)
        gradients = FlatBuffer(count: layout.totalCount)
    }

    /// The number of scalar parameters.
    public var count: Int { layout.totalCount }

    /// A copy of the parameter called `name`, shaped.
    /// - Throws: `NNError.unknownName`.
    public func value(named name: String) throws -> Tensor {
        guard let e = layout.entry(named: name) else { throw NNError.unknownName(name) }
        return try values.tensor(e.range, shape: e.shape)
    }

    /// A copy of the gradient of the parameter called `name`, shaped.
    /// - Throws: `NNError.unknownName`.
    public func gradient(named name: String) throws -> Tensor {
        guard let e = layout.entry(named: name) else { throw NNError.unknownName(name) }
        return try gradients.tensor(e.range, shape: e.shape)
    }

    /// Overwrites the parameter called `name`; the tensor must have its shape.
    /// - Throws: `NNError.unknownName`, `TensorError.shapeMismatch`.
    public func setValue(_ tensor: Tensor, named name: String) throws {
        guard let e = layout.entry(named: name) else { throw NNError.unknownName(name) }
        guard tensor.shape == e.shape else {
            throw TensorError.shapeMismatch(operation: "setValue(\(name))", lhs: e.shape, rhs: tensor.shape)
        }
        try values.assign(tensor, to: e.range)
    }
}
