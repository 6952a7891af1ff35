import Foundation
import Phalanx
import PhalanxElastic
import PhalanxTelemetry

/// What one member shows and records of a run: progress lines (or JSON events), the metrics
/// file, the timeline and, at the end, the plot.
final class RunReport {
    let json: Bool
    let member: Int
    let directory: String?
    let metrics: MetricsLog?
    let timeline: Timeline?
    var progress: ProgressLine
    var points: [TrainingPlot.Point] = []
    var markers: [TrainingPlot.Marker] = []
    let name: String

    init(name: String, member: Int, json: Bool, directory: String?, startStep: Int, totalSteps: Int) throws {
        self.name = name
        self.member = member
        self.json = json
        self.directory = directory
        if let directory {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            metrics = try MetricsLog(path: "\(directory)/metrics-\(member).jsonl")
            timeline = Timeline(process: member, name: "member \(member)")
        } else {
            metrics = nil
            timeline = nil
        }
        progress = ProgressLine(startStep: startStep, totalSteps: totalSteps)
    }

    /// A JSON event on standard output (with --json), or a text line.
    func say(_ text: String, event fields: [String: Any]) {
        if json {
            var object = fields
            object["member"] = object["member"] ?? member
            guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(text)
        }
        fflush(nil)
    }

    /// A committed step.
    func committed(step: Int, loss: Double, worldSize: Int, epoch: Int, seconds: Double, batchSize: Int) {
        let rate = seconds > 0 ? Double(batchSize) / seconds : 0
        points.append(TrainingPlot.Point(step: step, loss: loss, samplesPerSecond: rate))
        metrics?.write(["event": "step", "step": step, "loss": loss, "world_size": worldSize, "epoch": epoch, "step_ms": seconds * 1000,
                        "samples_per_s": rate, "member": member])
    }

    /// A change of members.
    func changed(_ change: MembershipChange) {
        if !change.lost.isEmpty { markers.append(TrainingPlot.Marker(step: change.redoStep, label: "lost \(change.lost.map(String.init).joined(separator: ","))", isJoin: false)) }
        if !change.joined.isEmpty { markers.append(TrainingPlot.Marker(step: change.redoStep, label: "joined \(change.joined.map(String.init).joined(separator: ","))", isJoin: true)) }
        timeline?.record(.recovery, from: change.detectedAt, to: change.restoredAt, arguments: ["reason": change.reason, "world_size": change.worldSize])
        let fields: [String: Any] = [
            "event": "change", "epoch": Int(change.epoch), "members": change.members, "lost": change.lost, "joined": change.joined,
            "redo_step": change.redoStep, "interrupted_step": change.interruptedStep, "world_size": change.worldSize,
            "kept_connections": change.keptConnections, "reason": change.reason,
            "detected_at": change.detectedAt.timeIntervalSince1970, "agreed_at": change.agreedAt.timeIntervalSince1970,
            "rebuilt_at": change.rebuiltAt.timeIntervalSince1970, "restored_at": change.restoredAt.timeIntervalSince1970,
        ]
        metrics?.write(fields.merging(["member": member]) { a, _ in a })
        say("member \(member): \(change.summary)", event: fields)
    }

    /// Writes the timeline, and the plot when `plot` (one member draws it).
    func finish(plot: Bool) -> [String] {
        guard let directory else { return [] }
        var written: [String] = []
        if let timeline, (try? timeline.write(to: "\(directory)/timeline-\(member).json")) != nil { written.append("\(directory)/timeline-\(member).json") }
        if let metrics { written.append(metrics.path) }
        if plot, (try? TrainingPlot(title: name, points: points, markers: markers).write(to: "\(directory)/plot.svg")) != nil {
            written.append("\(directory)/plot.svg")
        }
        return written
    }
}
