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
        // From 0 (or below it, for a series that goes negative) to just above the data.
        let floor = min(0, values.filter(\.isFinite).min() ?? 0)
        let yTicks = AxisTicks(low: floor, high: max(ceiling, smooth.filter(\.isFinite).max() ?? 0) * 1.05, target: 4)
        let bottom = top + layout.panelHeight
        // Values beyond the axis (spikes above the 99th percentile) are drawn at its edge.
        func y(_ value: Double) -> Double { bottom - (max(min(value, yTicks.high), yTicks.low) - yTicks.low) / (yTicks.high - yTicks.low) * layout.panelHeight }
        var out = "<g class=\"panel\" id=\"\(name == "loss" ? "loss" : "throughput")\">\n"
        // Header: the panel's title on the left, the legend on the right (never over the data).
        out += "<text x=\"\(SVGText.number(layout.left))\" y=\"\(SVGText.number(top - 9))\" font-weight=\"bold\">\(SVGText.escape(title))</text>\n"
        let legend = "\(name) (smoothed, weight \(String(format: "%.2g", weight)))"
        let rawStart = layout.right - PlotLayout.textWidth(legend) - PlotLayout.textWidth("raw") - 58
        out += "<g class=\"legend\"><line x1=\"\(SVGText.number(rawStart))\" y1=\"\(SVGText.number(top - 13))\" x2=\"\(SVGText.number(rawStart + 16))\" y2=\"\(SVGText.number(top - 13))\" stroke=\"\(colour)\" stroke-opacity=\"0.35\" stroke-width=\"1\"/>"
        out += "<text x=\"\(SVGText.number(rawStart + 20))\" y=\"\(SVGText.number(top - 9))\">raw</text>"
        let smoothStart = layout.right - PlotLayout.textWidth(legend) - 20
        out += "<line x1=\"\(SVGText.number(smoothStart))\" y1=\"\(SVGText.number(top - 13))\" x2=\"\(SVGText.number(smoothStart + 16))\" y2=\"\(SVGText.number(top - 13))\" stroke=\"\(colour)\" stroke-width=\"2.5\"/>"
        out += "<text x=\"\(SVGText.number(smoothStart + 20))\" y=\"\(SVGText.number(top - 9))\">\(SVGText.escape(legend))</text></g>\n"
        // Grid and ticks.
        for value in yTicks.values {
            out += "<line x1=\"\(SVGText.number(layout.left))\" y1=\"\(SVGText.number(y(value)))\" x2=\"\(SVGText.number(layout.right))\" y2=\"\(SVGText.number(y(value)))\" stroke=\"#e3e3e3\"/>"
            out += "<text class=\"tick\" x=\"\(SVGText.number(layout.left - 6))\" y=\"\(SVGText.number(y(value) + 4))\" text-anchor=\"end\">\(yTicks.label(value))</text>\n"
        }
        for value in xTicks.values {
            out += "<line x1=\"\(SVGText.number(x(value)))\" y1=\"\(SVGText.number(top))\" x2=\"\(SVGText.number(x(value)))\" y2=\"\(SVGText.number(bottom))\" stroke=\"#eeeeee\"/>"
            if stepLabels { out += "<text class=\"tick\" x=\"\(SVGText.number(x(value)))\" y=\"\(SVGText.number(bottom + 16))\" text-anchor=\"middle\">\(xTicks.label(value))</text>" }
            out += "\n"
        }
        out += "<rect x=\"\(SVGText.number(layout.left))\" y=\"\(SVGText.number(top))\" width=\"\(SVGText.number(layout.right - layout.left))\" height=\"\(SVGText.number(layout.panelHeight))\" fill=\"none\" stroke=\"#888\"/>\n"
        // The unit, turned along the axis.
        let middle = top + layout.panelHeight / 2
        out += "<text class=\"unit\" x=\"18\" y=\"\(SVGText.number(middle))\" text-anchor=\"middle\" transform=\"rotate(-90 18 \(SVGText.number(middle)))\">\(SVGText.escape(unit))</text>\n"
        // The series: raw (pale) under smoothed (bold).
        for (series, attributes) in [(values, "class=\"raw\" data-raw=\"\(SVGText.escape(name))\" stroke-opacity=\"0.35\" stroke-width=\"1\""),
                                     (smooth, "class=\"series\" data-series=\"\(SVGText.escape(name))\" stroke-width=\"2.5\"")] {
            let path = zip(points, series).filter { $0.1.isFinite }.map { "\(SVGText.number(x(Double($0.0.step)))),\(SVGText.number(y($0.1)))" }.joined(separator: " ")
            if !path.isEmpty { out += "<polyline \(attributes) fill=\"none\" stroke=\"\(colour)\" stroke-linejoin=\"round\" points=\"\(path)\"/>\n" }
        }
        out += "</g>\n"
        return out
    }
}
