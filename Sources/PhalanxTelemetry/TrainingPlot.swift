import Foundation

/// An SVG chart of a training run: loss (top panel) and throughput (bottom panel) over steps,
/// with vertical markers where members were lost (red) or joined (green). Plain SVG 1.1, no
/// scripts, readable in any browser; `rsvg-convert plot.svg -o plot.png` makes a picture.
public struct TrainingPlot: Sendable {
    /// One point per step.
    public struct Point: Sendable, Equatable {
        /// The step.
        public var step: Int
        /// The loss at that step.
        public var loss: Double
        /// Samples per second at that step.
        public var samplesPerSecond: Double

        /// Makes a point.
        public init(step: Int, loss: Double, samplesPerSecond: Double) {
            self.step = step
            self.loss = loss
            self.samplesPerSecond = samplesPerSecond
        }
    }

    /// A membership event to mark.
    public struct Marker: Sendable, Equatable {
        /// The step it happened at.
        public var step: Int
        /// Its label, e.g. "member 2 lost".
        public var label: String
        /// True for a join (green), false for a loss (red).
        public var isJoin: Bool

        /// Makes a marker.
        public init(step: Int, label: String, isJoin: Bool) {
            self.step = step
            self.label = label
            self.isJoin = isJoin
        }
    }

    /// The points, in step order.
    public var points: [Point]
    /// The markers.
    public var markers: [Marker]
    /// The chart's title.
    public var title: String

    /// Makes a plot.
    public init(title: String, points: [Point], markers: [Marker]) {
        self.title = title
        self.points = points.sorted { $0.step < $1.step }
        self.markers = markers
    }

    /// The SVG document: two panels sharing the step axis, loss on top and throughput below,
    /// each with ticks, grid lines, its unit, the raw series (thin, pale) and the smoothed one
    /// (bold; TensorBoard's debiased exponential average, weight `smoothing`); membership
    /// changes as dashed lines labelled in a band above, staggered so labels never overlap.
    public func svg(width: Int = 960, height: Int = 640, smoothing: Double? = nil) -> String {
        let weight = smoothing ?? (points.count < 40 ? 0.6 : 0.9)
        let layout = PlotLayout(width: Double(width), height: Double(height), markerRows: PlotLayout.rows(for: markerLabels(width: width)))
        let steps = points.map(\.step)
        let xTicks = AxisTicks(low: Double(steps.min() ?? 0), high: Double(max(steps.max() ?? 1, (steps.min() ?? 0) + 1)), target: 8)
        func x(_ step: Double) -> Double { layout.left + (step - xTicks.low) / (xTicks.high - xTicks.low) * (layout.right - layout.left) }
        var out = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="\(SVGText.number(PlotLayout.fontSize))">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(SVGText.number(Double(width) / 2))" y="24" text-anchor="middle" font-size="16" font-weight="bold">\(SVGText.escape(title))</text>

        """
        let panels = [
            PlotPanel(name: "loss", title: "Loss", unit: "loss", colour: "#1f77b4", values: points.map(\.loss), top: layout.panelTops[0], clipOutliers: false),
            PlotPanel(name: "samples/s", title: "Throughput", unit: "samples/s", colour: "#e0600b", values: points.map(\.samplesPerSecond), top: layout.panelTops[1], clipOutliers: true),
        ]
        for (index, panel) in panels.enumerated() {
            out += panel.svg(points: points, smoothing: weight, layout: layout, x: x, xTicks: xTicks, stepLabels: index == panels.count - 1)
        }
        // Membership changes: a dashed line through both panels, its label in the band above.
        let bottom = layout.panelTops[1] + layout.panelHeight
        for placed in markerLabels(width: width) {
            let mx = SVGText.number(x(Double(placed.marker.step)))
            let colour = placed.marker.isJoin ? "#2ca02c" : "#d62728"
            out += "<g class=\"marker\"><line x1=\"\(mx)\" y1=\"\(SVGText.number(layout.panelTops[0]))\" x2=\"\(mx)\" y2=\"\(SVGText.number(bottom))\" stroke=\"\(colour)\" stroke-width=\"1.2\" stroke-dasharray=\"5 3\"/>"
            out += "<text x=\"\(SVGText.number(placed.x))\" y=\"\(SVGText.number(layout.markerBaseline(row: placed.row)))\" fill=\"\(colour)\" text-anchor=\"\(placed.anchor)\">\(SVGText.escape(placed.marker.label))</text></g>\n"
        }
        out += "<text x=\"\(SVGText.number((layout.left + layout.right) / 2))\" y=\"\(SVGText.number(Double(height) - 10))\" text-anchor=\"middle\">training step</text>\n"
        out += "</svg>\n"
        return out
    }

    /// Where each marker's label goes: its row in the band (the first row where it does not
    /// touch the label before it) and its anchor (kept inside the chart at the edges).
    func markerLabels(width: Int) -> [PlacedMarker] {
        let layout = PlotLayout(width: Double(width), height: 600, markerRows: 1)
        let steps = points.map(\.step)
        let xTicks = AxisTicks(low: Double(steps.min() ?? 0), high: Double(max(steps.max() ?? 1, (steps.min() ?? 0) + 1)), target: 8)
        var rowEnds: [Double] = []
        var placed: [PlacedMarker] = []
        for marker in markers.sorted(by: { $0.step < $1.step }) {
            let at = layout.left + (Double(marker.step) - xTicks.low) / (xTicks.high - xTicks.low) * (layout.right - layout.left)
            let textWidth = PlotLayout.textWidth(marker.label)
            var anchor = "middle", start = at - textWidth / 2
            if start < layout.left { (anchor, start) = ("start", at) }
            if start + textWidth > layout.right { (anchor, start) = ("end", at - textWidth) }
            let row = rowEnds.firstIndex { $0 + 6 <= start } ?? (rowEnds.count < PlotLayout.maxMarkerRows ? rowEnds.count : rowEnds.indices.min { rowEnds[$0] < rowEnds[$1] } ?? 0)
            if row == rowEnds.count { rowEnds.append(start + textWidth) } else { rowEnds[row] = start + textWidth }
            placed.append(PlacedMarker(marker: marker, row: row, x: at, anchor: anchor))
        }
        return placed
    }

    /// Writes the SVG document to `path`.
    /// - Throws: when the file cannot be written.
    public func write(to path: String) throws {
        try Data(svg().utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

}
