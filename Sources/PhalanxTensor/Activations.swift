#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Scalar activation functions and their derivatives, shared by `Tensor` and the layers.
public enum Activations {
    /// `max(x, 0)`.
    @inlinable public static func relu(_ x: Float) -> Float { x > 0 ? x : 0 }

    /// The exact GELU, `0.5 · x · (1 + erf(x / √2))`, computed with erfc to keep precision for negative x.
    @inlinable public static func gelu(_ x: Float) -> Float { 0.5 * x * erfcf(-x * 0.707_106_77) }

    /// d/dx GELU(x) = Φ(x) + x·φ(x).
    @inlinable public static func geluDerivative(_ x: Float) -> Float {
        let cdf = 0.5 * erfcf(-x * 0.707_106_77)
        let pdf = expf(-0.5 * x * x) * 0.398_942_28
        return cdf + x * pdf
    }

    /// The logistic function, stable for large |x|.
    @inlinable public static func sigmoid(_ x: Float) -> Float {
        if x >= 0 { return 1 / (1 + expf(-x)) }
        let e = expf(x)
        return e / (1 + e)
    }

    /// The hyperbolic tangent.
    @inlinable public static func tanh(_ x: Float) -> Float { tanhf(x) }

    /// e^x.
    @inlinable public static func exp(_ x: Float) -> Float { expf(x) }

    /// The natural logarithm.
    @inlinable public static func log(_ x: Float) -> Float { logf(x) }
}
