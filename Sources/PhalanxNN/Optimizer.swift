import PhalanxTensor

/// Updates a model's flat parameter buffer from its flat gradient buffer.
///
/// Optimizer state (momentum, Adam moments) is itself one flat buffer with a named layout
/// ("optimizer.adam.m.layers.0.weight", …) so checkpoints and state transfer copy it whole.
public protocol Optimizer: AnyObject {
    /// The learning rate used by the next `step` (schedules set it before each step).
    var learningRate: Float { get set }
    /// The number of steps taken so far.
    var stepCount: Int { get set }
    /// The state buffer (empty for plain SGD).
    var state: FlatBuffer { get }
    /// The names of the tensors in `state`.
    var stateLayout: ParameterLayout { get }

    /// Applies one update. Both buffers hold `parameterCount` elements in the model's layout.
    /// - Throws: `NNError.sizeMismatch` if a buffer has the wrong size.
    func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>) throws
}

extension Optimizer {
    /// Applies one update to a model's parameters from its gradients.
    /// - Throws: `NNError.sizeMismatch` if the store was not the one the optimizer was made for.
    public func step(_ store: ParameterStore) throws {
        try step(parameters: store.values.buffer, gradients: UnsafeBufferPointer(store.gradients.buffer))
    }

    func checkSizes(_ parameters: Int, _ gradients: Int, expected: Int) throws {
        guard parameters == expected else { throw NNError.sizeMismatch(what: "optimizer parameters", expected: expected, got: parameters) }
        guard gradients == expected else { throw NNError.sizeMismatch(what: "optimizer gradients", expected: expected, got: gradients) }
    }
}

/// Builds the state layout "prefix.<slot>.<parameter name>" for each slot, slot after slot.
func optimizerStateLayout(prefix: String, slots: [String], parameters: ParameterLayout) -> ParameterLayout {
    var layout = ParameterLayout()
    for slot in slots {
        for entry in parameters.entries {
            // Names are unique in `parameters` and slots differ, so appending cannot fail.
            _ = try? layout.append(name: "\(prefix).\(slot).\(entry.name)", shape: entry.shape)
        }
    }
    return layout
}
