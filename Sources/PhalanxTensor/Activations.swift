#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Scalar activation functions and their derivatives, shared by `Tensor` and the layers.
public enum Activations {
    /// `max(x, 0)`.
    @inlinable public static func relu(_ x: Float) -> Float { x > 0 ? x : 0 }

    /// The exact (erf) GELU, `x · Φ(x) = 0.5 · x · (1 + erf(x / √2))`.
    @inlinable public static func gelu(_ x: Float) -> Float { x * normalCDF(x).cdf }

    /// d/dx GELU(x) = Φ(x) + x·φ(x).
    @inlinable public static func geluDerivative(_ x: Float) -> Float {
        let (cdf, gauss) = normalCDF(x)
        return cdf + x * gauss * 0.398_942_28
    }

    /// The standard normal CDF Φ(x) and `exp(−x²/2)`, from one `fastExp`: the tail
    /// `Φ(−|x|) = ½·erfc(|x|/√2)` by Abramowitz & Stegun 7.1.26 (absolute error ≤ 1.5·10⁻⁷, the
    /// form PyTorch's vectorised erf uses), so negative inputs keep their precision. About 3×
    /// faster than libm's `erfcf`, which was a quarter of a small transformer's step.
    @inlinable public static func normalCDF(_ x: Float) -> (cdf: Float, gauss: Float) {
        let z = abs(x) * 0.707_106_77
        let t = 1 / (1 + 0.327_591_1 * z)
        let polynomial = t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))))
        let gauss = fastExp(-0.5 * x * x)
        let tail = 0.5 * polynomial * gauss
        return (x >= 0 ? 1 - tail : tail, gauss)
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

    /// `eˣ` without a library call, so that loops over it vectorise (Cephes' `expf`: x = n·ln 2 + r
    /// with |r| ≤ ½ ln 2, a degree-6 polynomial for eʳ, 2ⁿ from the exponent bits); within 2 ulp
    /// of `expf` for −87.3 ≤ x ≤ 88. Below −87.3 it returns 0 (where `expf` returns subnormals,
    /// and exactly 0 for −∞, as a masked softmax needs); above 88 it returns e⁸⁸; NaN stays NaN.
    @inlinable public static func fastExp(_ x: Float) -> Float {
        let clamped = Swift.min(x, 88)
        // Adding 1.5·2²³ rounds to an integer held in the low mantissa bits.
        let magic: Float = 12_582_912
        let shifted = clamped * 1.442_695_04 + magic
        let n = shifted - magic
        let r = clamped - n * 0.693_359_375 + n * 2.121_944_4e-4
        var p: Float = 1.987_569_15e-4
        p = p * r + 1.398_199_95e-3
        p = p * r + 8.333_451_9e-3
        p = p * r + 4.166_579_59e-2
        p = p * r + 1.666_666_55e-1
        p = p * r + 5.000_000_12e-1
        p = p * r * r + r + 1
        let exponent = (shifted.bitPattern &- magic.bitPattern) &+ 127
        let scale = Float(bitPattern: (exponent & 0xFF) << 23)
        return x < -87.336_54 ? 0 : p * scale
    }

    /// The natural logarithm.
    @inlinable public static func log(_ x: Float) -> Float { logf(x) }
}
