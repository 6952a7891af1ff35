extension Tensor {
    /// `max(x, 0)` elementwise.
    public func relu() -> Tensor { map(Activations.relu) }
    /// The exact (erf) GELU elementwise.
    public func gelu() -> Tensor { map(Activations.gelu) }
    /// The hyperbolic tangent elementwise.
    public func tanh() -> Tensor { map(Activations.tanh) }
    /// The logistic sigmoid elementwise (stable for large |x|).
    public func sigmoid() -> Tensor { map(Activations.sigmoid) }
    /// e^x elementwise.
    public func exp() -> Tensor { map(Activations.exp) }
    /// The natural logarithm elementwise (NaN for negative inputs, -inf at 0).
    public func log() -> Tensor { map(Activations.log) }
    /// Absolute values elementwise.
    public func abs() -> Tensor { map { Swift.abs($0) } }

    /// Replaces each element by `max(x, 0)` in place.
    public mutating func formReLU() { apply(Activations.relu) }
    /// Replaces each element by its GELU in place.
    public mutating func formGELU() { apply(Activations.gelu) }
    /// Replaces each element by its hyperbolic tangent in place.
    public mutating func formTanh() { apply(Activations.tanh) }
    /// Replaces each element by its sigmoid in place.
    public mutating func formSigmoid() { apply(Activations.sigmoid) }
}
