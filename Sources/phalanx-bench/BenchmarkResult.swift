import Foundation

/// One line of a benchmark report: our number, the baseline's, their ratio and the goal.
struct BenchmarkResult: Encodable {
    /// What was measured, e.g. "matmul n=512".
    let name: String
    /// Our throughput (or time, see `higherIsBetter`).
    let ours: Double
    /// The baseline measured in the same run.
    let baseline: Double
    /// `ours / baseline`.
    let ratio: Double
    /// The unit of `ours` and `baseline`.
    let unit: String
    /// What the baseline is.
    let baselineName: String
    /// The goal on `ratio` (a lower bound if `higherIsBetter`, else an upper bound).
    let goal: Double
    /// Whether a larger ratio is better.
    let higherIsBetter: Bool

    init(name: String, ours: Double, baseline: Double, unit: String, baselineName: String, goal: Double, higherIsBetter: Bool) {
        self.name = name
        self.ours = ours
        self.baseline = baseline
        self.ratio = ours / baseline
        self.unit = unit
        self.baselineName = baselineName
        self.goal = goal
        self.higherIsBetter = higherIsBetter
    }

    /// Whether the ratio meets the goal.
    var meetsGoal: Bool { higherIsBetter ? ratio >= goal : ratio <= goal }

    enum CodingKeys: String, CodingKey {
        case name, ours, baseline, ratio, unit
        case baselineName = "baseline_name"
        case goal
        case higherIsBetter = "higher_is_better"
        case meetsGoal = "meets_goal"
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(ours, forKey: .ours)
        try c.encode(baseline, forKey: .baseline)
        try c.encode(ratio, forKey: .ratio)
        try c.encode(unit, forKey: .unit)
        try c.encode(baselineName, forKey: .baselineName)
        try c.encode(goal, forKey: .goal)
        try c.encode(higherIsBetter, forKey: .higherIsBetter)
        try c.encode(meetsGoal, forKey: .meetsGoal)
    }

    /// One JSON object on one line.
    func jsonLine() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)).flatMap { String(data: $0, encoding: .utf8) } ?? "{}"
    }

    /// Prints results as an aligned table.
    static func printTable(_ results: [BenchmarkResult]) {
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        print(pad("benchmark", 34) + pad("ours", 12) + pad("baseline", 12) + pad("unit", 10) + pad("ratio", 8) + pad("goal", 9) + "baseline is")
        for r in results {
            let goal = (r.higherIsBetter ? "≥ " : "≤ ") + String(format: "%.2f", r.goal)
            print(
                pad(r.name, 34) + pad(String(format: "%.2f", r.ours), 12) + pad(String(format: "%.2f", r.baseline), 12)
                    + pad(r.unit, 10) + pad(String(format: "%.3f", r.ratio), 8) + pad(goal + (r.meetsGoal ? "" : " ✗"), 9)
                    + r.baselineName)
        }
    }
}
