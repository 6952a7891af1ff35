import Foundation

/// One panel of `TrainingPlot`: a series over steps with its axis, grid, unit and legend.
struct PlotPanel {
    let name: String
    let title: String
    let unit: String
    let colour: String
    let values: [Double]
    let top: Double
    /// Keep rare spikes (a step timed across a recovery) from squashing the chart: the axis
    /// stops at the 99th percentile and spikes are drawn at the edge.
    let clipOutliers: Bool

    /// TensorBoard's smoothing: an exponential moving average with weight `weight`, debiased
    /// so that the first points are not pulled toward zero; non-finite values are skipped.
    static func smoothed(_ values: [Double], weight: Double) -> [Double] {
        var average = 0.0, count = 0
        return values.map { value in
            guard value.isFinite else { return .nan }
            count += 1
            average = weight * average + (1 - weight) * value
            let debias = 1 - pow(weight, Double(count))
            return debias > 0 ? average / debias : value
        }
    }

    func svg(points: [TrainingPlot.Point], smoothing weight: Double, layout: PlotLayout, x: (Double) -> Double, xTicks: AxisTicks, stepLabels: Bool) -> String {
        let smooth = Self.smoothed(values, weight: weight)
        let finite = values.filter(\.isFinite).sorted()
        let ceiling = clipOutliers && finite.count >= 20 ? finite[Int(Double(finite.count - 1) * 0.99)] : finite.last ?? 1
        let yTicks = AxisTicks(low: 0, high: max(ceiling, smooth.filter(\.isFinite).max() ?? 0) * 1.05, target: 4)
        let bottom = top + layout.panelHeight
        func y(_ value: Double) -> Double { bottom - (min(value, yTicks.high) - yTicks.low) / (yTicks.high - yTicks.low) * layout.panelHeight }
        var out = "<g class=\"panel\" id=\"\(name == "loss" ? "loss" : "throughput")\">\n"
        // Header: the panel's title on the left, the legend on the right (never over the data).
        out += "<text x=\"\(f(layout.left))\" y=\"\(f(top - 9))\" font-weight=\"bold\">\(escape(title))</text>\n"
        let legend = "\(name) (smoothed, weight \(String(format: "%.2g", weight)))"
        let rawStart = layout.right - PlotLayout.textWidth(legend) - PlotLayout.textWidth("raw") - 58
        out += "<g class=\"legend\"><line x1=\"\(f(rawStart))\" y1=\"\(f(top - 13))\" x2=\"\(f(rawStart + 16))\" y2=\"\(f(top - 13))\" stroke=\"\(colour)\" stroke-opacity=\"0.35\" stroke-width=\"1\"/>"
        out += "<text x=\"\(f(rawStart + 20))\" y=\"\(f(top - 9))\">raw</text>"
        let smoothStart = layout.right - PlotLayout.textWidth(legend) - 20
        out += "<line x1=\"\(f(smoothStart))\" y1=\"\(f(top - 13))\" x2=\"\(f(smoothStart + 16))\" y2=\"\(f(top - 13))\" stroke=\"\(colour)\" stroke-width=\"2.5\"/>"
        out += "<text x=\"\(f(smoothStart + 20))\" y=\"\(f(top - 9))\">\(escape(legend))</text></g>\n"
        // Grid and ticks.
        for value in yTicks.values {
            out += "<line x1=\"\(f(layout.left))\" y1=\"\(f(y(value)))\" x2=\"\(f(layout.right))\" y2=\"\(f(y(value)))\" stroke=\"#e3e3e3\"/>"
            out += "<text class=\"tick\" x=\"\(f(layout.left - 6))\" y=\"\(f(y(value) + 4))\" text-anchor=\"end\">\(yTicks.label(value))</text>\n"
        }
        for value in xTicks.values {
            out += "<line x1=\"\(f(x(value)))\" y1=\"\(f(top))\" x2=\"\(f(x(value)))\" y2=\"\(f(bottom))\" stroke=\"#eeeeee\"/>"
            if stepLabels { out += "<text class=\"tick\" x=\"\(f(x(value)))\" y=\"\(f(bottom + 16))\" text-anchor=\"middle\">\(xTicks.label(value))</text>" }
            out += "\n"
        }
        out += "<rect x=\"\(f(layout.left))\" y=\"\(f(top))\" width=\"\(f(layout.right - layout.left))\" height=\"\(f(layout.panelHeight))\" fill=\"none\" stroke=\"#888\"/>\n"
        // The unit, turned along the axis.
        let middle = top + layout.panelHeight / 2
        out += "<text class=\"unit\" x=\"18\" y=\"\(f(middle))\" text-anchor=\"middle\" transform=\"rotate(-90 18 \(f(middle)))\">\(escape(unit))</text>\n"
        // The series: raw (pale) under smoothed (bold).
        for (series, attributes) in [(values, "class=\"raw\" data-raw=\"\(escape(name))\" stroke-opacity=\"0.35\" stroke-width=\"1\""),
                                     (smooth, "class=\"series\" data-series=\"\(escape(name))\" stroke-width=\"2.5\"")] {
            let path = zip(points, series).filter { $0.1.isFinite }.map { "\(f(x(Double($0.0.step)))),\(f(y($0.1)))" }.joined(separator: " ")
            if !path.isEmpty { out += "<polyline \(attributes) fill=\"none\" stroke=\"\(colour)\" stroke-linejoin=\"round\" points=\"\(path)\"/>\n" }
        }
        out += "</g>\n"
        return out
    }
}
