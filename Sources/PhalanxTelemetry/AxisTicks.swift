import Foundation

/// "Nice" tick marks for a chart axis (steps of 1, 2, 2.5 or 5 times a power of ten, about
/// `target` of them) and their labels in short SI form (`25k`, `1.5M`, `0.25`).
struct AxisTicks: Equatable {
    /// The axis' range, widened to whole ticks.
    let low: Double
    let high: Double
    /// The distance between ticks.
    let step: Double
    /// The tick values, from `low` to `high`.
    let values: [Double]

    /// Ticks covering `low...high` (a degenerate or non-finite range gets a unit range).
    init(low: Double, high: Double, target: Int = 5) {
        var low = low.isFinite ? low : 0, high = high.isFinite ? high : 1
        if high <= low { high = low + max(abs(low), 1) }
        let rough = (high - low) / Double(max(target, 1))
        let power = pow(10, floor(log10(rough)))
        let step = [1, 2, 2.5, 5, 10].map { $0 * power }.first { $0 >= rough } ?? 10 * power
        low = (low / step).rounded(.down) * step
        high = (high / step).rounded(.up) * step
        self.low = low
        self.high = high
        self.step = step
        let count = Int(((high - low) / step).rounded()) + 1
        values = (0..<max(count, 1)).map { low + Double($0) * step }
    }

    /// `value` written with the SI suffix and the decimals that the tick step needs.
    func label(_ value: Double) -> String {
        if abs(value) < step * 1e-9 { return "0" }
        let (scale, suffix): (Double, String) = switch max(abs(high), abs(low)) {
        case 1e9...: (1e9, "G")
        case 1e6...: (1e6, "M")
        case 1e4...: (1e3, "k")
        default: (1, "")
        }
        // As many decimals as the step needs to be exact (2.5 → 1, 0.05 → 2).
        let scaled = step / scale
        let decimals = (0...6).first { (places: Int) -> Bool in
            let shifted: Double = scaled * pow(10.0, Double(places))
            return abs(shifted - shifted.rounded()) < 1e-6 * max(1.0, shifted)
        } ?? 6
        let text = String(format: "%.\(decimals)f", value / scale)
        return (text == "-0" ? "0" : text) + suffix
    }
}
