import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import PhalanxTelemetry
import Testing

/// Metrics files, timelines and plots: what they write reads back as what it should be.
struct TelemetryTests {
    let directory: String = {
        let path = NSTemporaryDirectory() + "phalanx-telemetry-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    @Test func metricsLinesReadBack() throws {
        let log = try MetricsLog(path: "\(directory)/m/metrics.jsonl")
        log.write(["event": "step", "step": 1, "loss": 0.5])
        log.write(["event": "step", "step": 2, "loss": 0.25, "members": [0, 2]])
        let lines = MetricsLog.read(path: log.path)
        #expect(lines.count == 2)
        #expect(lines[1]["loss"] as? Double == 0.25)
        #expect(lines[1]["members"] as? [Int] == [0, 2])
        #expect(lines.allSatisfy { $0["time"] is Double })
    }

    @Test func timelinesAreChromeTraceArraysAndMerge() throws {
        let a = Timeline(process: 0, name: "member 0"), b = Timeline(process: 3, name: "member 3")
        let start = Date()
        for phase in Timeline.Phase.allCases { a.record(phase, from: start, to: start.addingTimeInterval(0.001)) }
        _ = b.measure(.forward) { 42 }
        try a.write(to: "\(directory)/a.json")
        try b.write(to: "\(directory)/b.json")
        try Timeline.merge(["\(directory)/a.json", "\(directory)/b.json"], into: "\(directory)/all.json")
        let events = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(directory)/all.json"))) as? [[String: Any]])
        let spans = events.filter { $0["ph"] as? String == "X" }
        #expect(Set(spans.compactMap { $0["name"] as? String }) == Set(Timeline.Phase.allCases.map(\.rawValue)))
        #expect(Set(spans.compactMap { $0["pid"] as? Int }) == [0, 3])
        #expect(spans.allSatisfy { ($0["dur"] as? Double ?? -1) >= 0 && $0["ts"] is Double })
        #expect(events.contains { $0["ph"] as? String == "M" && ($0["args"] as? [String: Any])?["name"] as? String == "member 3" })
    }

    @Test func thePlotIsWellFormedSVGWithBothSeriesAndTheMarkers() throws {
        let points = (0..<50).map { (step: Int) -> TrainingPlot.Point in
            let rate: Double = step == 20 ? .nan : 1000 + Double(step)
            return TrainingPlot.Point(step: step, loss: 2 / Double(step + 1), samplesPerSecond: rate)
        }
        let plot = TrainingPlot(title: "a <test> & more", points: points, markers: [
            TrainingPlot.Marker(step: 20, label: "lost 2", isJoin: false), TrainingPlot.Marker(step: 30, label: "joined 4", isJoin: true),
        ])
        let svg = plot.svg()
        let checker = SVGChecker()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = checker
        #expect(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "")")
        #expect(checker.root == "svg")
        #expect(checker.series == ["loss", "samples/s"])
        #expect(checker.raw == ["loss", "samples/s"])
        #expect(checker.markerCount == 2)
        #expect(checker.texts.contains("a <test> & more"))
        // The loss series has one point per step; the throughput series skips the NaN.
        #expect(checker.pointCounts == [50, 49])
    }

    /// A run like the one whose plot clipped "2.574e+04" at the left edge: throughput in the
    /// tens of thousands, and changes of members close together.
    static let busyPlot = TrainingPlot(
        title: "DigitsMLP, 4 members",
        points: (0..<300).map { TrainingPlot.Point(step: $0, loss: 2.3 * exp(-Double($0) / 60) + 0.05, samplesPerSecond: 25_740 + 3000 * sin(Double($0))) },
        markers: [
            TrainingPlot.Marker(step: 100, label: "lost 2", isJoin: false), TrainingPlot.Marker(step: 101, label: "joined 4", isJoin: true),
            TrainingPlot.Marker(step: 103, label: "lost 1,3", isJoin: false), TrainingPlot.Marker(step: 0, label: "joined 5", isJoin: true),
            TrainingPlot.Marker(step: 299, label: "lost 0", isJoin: false),
        ])

    @Test func everyLabelFitsOnTheCanvasWithTicksAndUnitsAndMarkerLabelsApart() throws {
        let width = 960.0
        let checker = SVGChecker()
        let parser = XMLParser(data: Data(Self.busyPlot.svg(width: Int(width)).utf8))
        parser.delegate = checker
        #expect(parser.parse())
        for label in checker.labels where !label.rotated {
            #expect(label.extent.lowerBound >= 0 && label.extent.upperBound <= width, "\(label.text) at x \(label.x) (\(label.anchor)) leaves the canvas")
        }
        for label in checker.labels where label.rotated { #expect(label.x >= label.size, "\(label.text) is cut at the left edge") }
        // Ticks: short SI labels, several per axis.
        let ticks = checker.labels.filter { $0.kind == "tick" }.map(\.text)
        #expect(ticks.contains("20k") && ticks.contains("0") && ticks.contains("250"), "\(ticks)")
        #expect(!ticks.contains { $0.contains("e+") || $0.contains("e-") }, "\(ticks)")
        #expect(ticks.count >= 12, "\(ticks)")
        // Units along the axes, and the step axis named.
        #expect(Set(checker.labels.filter { $0.kind == "unit" }.map(\.text)) == ["loss", "samples/s"])
        #expect(checker.texts.contains("training step"))
        // Marker labels that would touch are put on different rows.
        let markers = checker.labels.filter { $0.kind == "marker" }
        #expect(markers.count == 5)
        for (i, a) in markers.enumerated() {
            for b in markers[(i + 1)...] where a.y == b.y {
                #expect(a.extent.upperBound <= b.extent.lowerBound || b.extent.upperBound <= a.extent.lowerBound, "\(a.text) overlaps \(b.text)")
            }
        }
        // The smoothed throughput stays near the mean (the raw series swings ±3000).
        let smoothed = PlotPanel.smoothed(Self.busyPlot.points.map(\.samplesPerSecond), weight: 0.9)
        #expect(smoothed.dropFirst(30).allSatisfy { abs($0 - 25_740) < 1500 })
    }

    @Test func axisTicksAreRoundNumbers() {
        let throughput = AxisTicks(low: 0, high: 27_000, target: 4)
        #expect(throughput.values == [0, 10_000, 20_000, 30_000])
        #expect(throughput.values.map(throughput.label) == ["0", "10k", "20k", "30k"])
        let quarters = AxisTicks(low: 0, high: 10, target: 4)
        #expect(quarters.values.map(quarters.label) == ["0", "2.5", "5.0", "7.5", "10.0"])
        let loss = AxisTicks(low: 0, high: 0.63, target: 4)
        #expect(loss.values.map(loss.label) == ["0", "0.2", "0.4", "0.6", "0.8"])
        let flat = AxisTicks(low: 5, high: 5)
        #expect(flat.low <= 5 && flat.high > 5)
    }

    /// Renders the plot with librsvg (Debian's librsvg2-bin), then reads the picture back:
    /// its size, white margins, and the pixels of both series' colours inside their panels.
    @Test func thePlotRendersToAPNGWithBothSeriesVisible() throws {
        let directory = NSTemporaryDirectory() + "phalanx-plot-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data(Self.busyPlot.svg(width: 960, height: 640).utf8).write(to: URL(fileURLWithPath: "\(directory)/plot.svg"))
        let render = Process()
        render.executableURL = URL(fileURLWithPath: "/usr/bin/rsvg-convert")
        render.arguments = ["\(directory)/plot.svg", "-o", "\(directory)/plot.png"]
        try render.run()
        render.waitUntilExit()
        #expect(render.terminationStatus == 0)
        let png = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/plot.png"))
        #expect(png.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]))
        let size = png.dropFirst(16).prefix(8).map { UInt32($0) }
        #expect((size[0] << 24 | size[1] << 16 | size[2] << 8 | size[3], size[4] << 24 | size[5] << 16 | size[6] << 8 | size[7]) == (960, 640))
        // Count the pixels of each series' colour per panel (Python's zlib decodes the PNG).
        let reader = Process()
        reader.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        reader.arguments = ["python3", "-c", Self.pixelCounter, "\(directory)/plot.png"]
        let pipe = Pipe()
        reader.standardOutput = pipe
        try reader.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        reader.waitUntilExit()
        let counts = output.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        #expect(counts.count == 3, "\(output)")
        guard counts.count == 3 else { return }
        #expect(counts[0] > 500, "blue loss pixels in the top half: \(counts[0])")
        #expect(counts[1] > 500, "orange throughput pixels in the bottom half: \(counts[1])")
        #expect(counts[2] == 0, "non-white pixels in the left 4 columns (nothing cut at the edge): \(counts[2])")
    }

    /// Prints: loss-blue pixels in the top half, throughput-orange ones in the bottom half,
    /// non-white pixels in the leftmost 4 columns.
    static let pixelCounter = #"""
    import sys, zlib, struct
    data = open(sys.argv[1], 'rb').read()
    w, h, depth, ctype = struct.unpack('>IIBB', data[16:26])
    chunks, pos = b'', 8
    while pos < len(data):
        n, kind = struct.unpack('>I4s', data[pos:pos+8])
        if kind == b'IDAT': chunks += data[pos+8:pos+8+n]
        pos += 12 + n
    raw = zlib.decompress(chunks)
    bpp = {2: 3, 6: 4}[ctype]
    stride = w * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(h):
        f = raw[i]; line = bytearray(raw[i+1:i+1+stride]); i += 1 + stride
        for x in range(stride):
            a = line[x-bpp] if x >= bpp else 0
            b = prev[x]; c = prev[x-bpp] if x >= bpp else 0
            if f == 1: line[x] = (line[x] + a) & 255
            elif f == 2: line[x] = (line[x] + b) & 255
            elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c; pa, pb, pc = abs(p-a), abs(p-b), abs(p-c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line); prev = line
    def near(px, rgb): return all(abs(px[k] - rgb[k]) < 40 for k in range(3))
    blue = sum(1 for y in range(h // 2) for x in range(w) if near(rows[y][x*bpp:x*bpp+3], (0x1f, 0x77, 0xb4)))
    orange = sum(1 for y in range(h // 2, h) for x in range(w) if near(rows[y][x*bpp:x*bpp+3], (0xe0, 0x60, 0x0b)))
    edge = sum(1 for y in range(h) for x in range(4) if rows[y][x*bpp:x*bpp+3] != bytearray(b'\xff\xff\xff'))
    print(blue, orange, edge)
    """#

    @Test func progressLinesAndClocks() {
        let start = Date(timeIntervalSince1970: 1000)
        let line = ProgressLine(startStep: 100, totalSteps: 300, start: start)
            .line(step: 200, epoch: 4, loss: 0.12345, worldSize: 3, batchSize: 64, now: start.addingTimeInterval(10))
        #expect(line == "step 200/300  epoch 5  loss 0.1235  640 samples/s  world 3  ETA 0:10")
        #expect(ProgressLine.clock(3725) == "1:02:05")
        #expect(ProgressLine.clock(.nan) == "?")
    }
}

final class SVGChecker: NSObject, XMLParserDelegate {
    /// A text element: its content, where it is anchored, and whether it is turned.
    struct Label {
        var text: String
        var x: Double
        var y: Double
        var anchor: String
        var size: Double
        var rotated: Bool
        var kind: String

        /// Its horizontal extent, estimated as the plot does (0.62 em per glyph).
        var extent: ClosedRange<Double> {
            let width = Double(text.count) * size * 0.62
            switch anchor {
            case "end": return (x - width)...x
            case "middle": return (x - width / 2)...(x + width / 2)
            default: return x...(x + width)
            }
        }
    }

    var root: String?
    var series: [String] = []
    var raw: [String] = []
    var pointCounts: [Int] = []
    var markerCount = 0
    var texts: [String] = []
    var labels: [Label] = []
    private var text = ""
    private var current: Label?
    private var inMarker = false

    func parser(_ parser: XMLParser, didStartElement element: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        if root == nil { root = element }
        if element == "polyline", let name = attributes["data-series"] {
            series.append(name)
            pointCounts.append(attributes["points"]?.split(separator: " ").count ?? 0)
        }
        if element == "polyline", let name = attributes["data-raw"] { raw.append(name) }
        if element == "g", attributes["class"] == "marker" {
            markerCount += 1
            inMarker = true
        }
        if element == "text" {
            current = Label(text: "", x: Double(attributes["x"] ?? "") ?? 0, y: Double(attributes["y"] ?? "") ?? 0,
                            anchor: attributes["text-anchor"] ?? "start", size: Double(attributes["font-size"] ?? "") ?? 12,
                            rotated: attributes["transform"] != nil, kind: inMarker ? "marker" : attributes["class"] ?? "")
        }
        text = ""
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

    func parser(_ parser: XMLParser, didEndElement element: String, namespaceURI: String?, qualifiedName: String?) {
        if element == "text" {
            texts.append(text)
            if var label = current {
                label.text = text
                labels.append(label)
            }
            current = nil
        }
        if element == "g" { inMarker = false }
    }
}
