import Foundation

/// An SVG chart of a training run: loss (top panel) and throughput (bottom panel) over steps,
/// with vertical markers where members were lost (red) or joined (green). Plain SVG 1.1, no
/// scripts, readable in any browser.
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

    /// The SVG document.
    public func svg(width: Int = 900, height: Int = 560) -> String {
        let left = 70.0, right = Double(width) - 20, top = 40.0, panel = (Double(height) - top - 60) / 2
        let steps = points.map(\.step)
        let firstStep = Double(steps.min() ?? 0), lastStep = Double(max((steps.max() ?? 1), (steps.min() ?? 0) + 1))
        func x(_ step: Double) -> Double { left + (step - firstStep) / (lastStep - firstStep) * (right - left) }
        var out = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(width / 2)" y="22" text-anchor="middle" font-size="15">\(escape(title))</text>

        """
        let panels: [(String, [Double], String, Double)] = [
            ("loss", points.map(\.loss), "#1f77b4", top),
            ("samples/s", points.map(\.samplesPerSecond), "#ff7f0e", top + panel + 30),
        ]
        for (label, values, colour, y0) in panels {
            let finite = values.filter(\.isFinite)
            let low = min(finite.min() ?? 0, 0), high = max(finite.max() ?? 1, low + 1e-9)
            func y(_ value: Double) -> Double { y0 + panel - (value - low) / (high - low) * panel }
            out += "<g class=\"panel\" id=\"\(label == "loss" ? "loss" : "throughput")\">\n"
            out += "<rect x=\"\(f(left))\" y=\"\(f(y0))\" width=\"\(f(right - left))\" height=\"\(f(panel))\" fill=\"none\" stroke=\"#999\"/>\n"
            out += "<text x=\"\(f(left - 8))\" y=\"\(f(y0 + 12))\" text-anchor=\"end\">\(g(high))</text>\n"
            out += "<text x=\"\(f(left - 8))\" y=\"\(f(y0 + panel))\" text-anchor=\"end\">\(g(low))</text>\n"
            out += "<text x=\"\(f(left + 6))\" y=\"\(f(y0 + 14))\" fill=\"\(colour)\">\(escape(label))</text>\n"
            let path = zip(points, values).filter { $0.1.isFinite }.map { "\(f(x(Double($0.0.step)))),\(f(y($0.1)))" }.joined(separator: " ")
            if !path.isEmpty {
                out += "<polyline class=\"series\" data-series=\"\(escape(label))\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.5\" points=\"\(path)\"/>\n"
            }
            out += "</g>\n"
        }
        for marker in markers {
            let mx = f(x(Double(marker.step)))
            let colour = marker.isJoin ? "#2ca02c" : "#d62728"
            out += "<g class=\"marker\"><line x1=\"\(mx)\" y1=\"\(f(top))\" x2=\"\(mx)\" y2=\"\(f(top + 2 * panel + 30))\" stroke=\"\(colour)\" stroke-dasharray=\"4 3\"/>"
            out += "<text x=\"\(mx)\" y=\"\(f(top + 2 * panel + 45))\" fill=\"\(colour)\" text-anchor=\"middle\">\(escape(marker.label))</text></g>\n"
        }
        out += "<text x=\"\(f(left))\" y=\"\(height - 8)\">step \(Int(firstStep))</text>\n"
        out += "<text x=\"\(f(right))\" y=\"\(height - 8)\" text-anchor=\"end\">step \(Int(lastStep))</text>\n"
        out += "</svg>\n"
        return out
    }

    /// Writes the SVG document to `path`.
    /// - Throws: when the file cannot be written.
    public func write(to path: String) throws {
        try Data(svg().utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    private func f(_ value: Double) -> String { String(format: "%.1f", value) }
    private func g(_ value: Double) -> String { String(format: "%.4g", value) }
    private func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
