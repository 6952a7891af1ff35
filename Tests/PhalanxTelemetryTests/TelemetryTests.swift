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
        #expect(checker.markerCount == 2)
        #expect(checker.texts.contains("a <test> & more"))
        // The loss series has one point per step; the throughput series skips the NaN.
        #expect(checker.pointCounts == [50, 49])
    }

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
    var root: String?
    var series: [String] = []
    var pointCounts: [Int] = []
    var markerCount = 0
    var texts: [String] = []
    private var text = ""

    func parser(_ parser: XMLParser, didStartElement element: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        if root == nil { root = element }
        if element == "polyline", let name = attributes["data-series"] {
            series.append(name)
            pointCounts.append(attributes["points"]?.split(separator: " ").count ?? 0)
        }
        if element == "g", attributes["class"] == "marker" { markerCount += 1 }
        text = ""
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

    func parser(_ parser: XMLParser, didEndElement element: String, namespaceURI: String?, qualifiedName: String?) {
        if element == "text" { texts.append(text) }
    }
}
