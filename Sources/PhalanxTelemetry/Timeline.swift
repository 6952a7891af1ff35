import Foundation

/// A Chrome-trace / Perfetto timeline (the JSON array format of `chrome://tracing`): one
/// complete event ("ph": "X") per phase, with the member as the process and a track per kind
/// of work, like Horovod's timeline.
///
/// ```swift
/// let timeline = Timeline(process: rank, name: "member \(rank)")
/// try timeline.measure("forward", category: "compute") { try model.forward(x) }
/// try timeline.write(to: "run/timeline-0.json")
/// ```
public final class Timeline: @unchecked Sendable {
    /// The phases every trainer records.
    public enum Phase: String, CaseIterable, Sendable {
        /// Forward pass and loss.
        case forward
        /// Backward pass (gradients).
        case backward
        /// The gradient all-reduce.
        case allReduce = "all-reduce"
        /// Optimizer update.
        case update
        /// Durable checkpoint handed to the writer.
        case checkpoint
        /// A change of members, from detection to restored state.
        case recovery
    }

    /// The trace's process id (the member or rank).
    public let process: Int
    private let name: String
    private let lock = NSLock()
    private var events: [[String: Any]] = []
    private let origin: Date

    /// A timeline for process `process`, labelled `name`; times count from `origin` (the same
    /// origin across processes keeps their tracks aligned).
    public init(process: Int, name: String, origin: Date = Date(timeIntervalSince1970: 0)) {
        self.process = process
        self.name = name
        self.origin = origin
    }

    /// Records `phase` from `start` to `end`.
    public func record(_ phase: Phase, from start: Date, to end: Date, arguments: [String: Any] = [:]) {
        record(phase.rawValue, category: phase == .recovery ? "membership" : "training", from: start, to: end, arguments: arguments)
    }

    /// Records any named span.
    public func record(_ name: String, category: String, from start: Date, to end: Date, arguments: [String: Any] = [:]) {
        var event: [String: Any] = [
            "name": name, "cat": category, "ph": "X", "pid": process, "tid": category == "membership" ? 1 : 0,
            "ts": start.timeIntervalSince(origin) * 1e6, "dur": max(0, end.timeIntervalSince(start)) * 1e6,
        ]
        if !arguments.isEmpty { event["args"] = arguments }
        lock.lock()
        events.append(event)
        lock.unlock()
    }

    /// Runs `body` and records it as `phase`.
    public func measure<T>(_ phase: Phase, _ body: () throws -> T) rethrows -> T {
        let start = Date()
        defer { record(phase, from: start, to: Date()) }
        return try body()
    }

    /// Number of events recorded.
    public var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return events.count
    }

    /// Writes the trace (with process and track names) as a JSON array.
    /// - Throws: when the file cannot be written.
    public func write(to path: String) throws {
        lock.lock()
        var all = events
        lock.unlock()
        all.insert(["name": "process_name", "ph": "M", "pid": process, "args": ["name": name]], at: 0)
        all.insert(["name": "thread_name", "ph": "M", "pid": process, "tid": 0, "args": ["name": "training"]], at: 1)
        all.insert(["name": "thread_name", "ph": "M", "pid": process, "tid": 1, "args": ["name": "membership"]], at: 2)
        let data = try JSONSerialization.data(withJSONObject: all, options: [])
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// Joins several trace files (JSON arrays) into one, e.g. one per member into the job's.
    /// - Throws: when a file cannot be read or is not a JSON array, or the result cannot be written.
    public static func merge(_ paths: [String], into destination: String) throws {
        var all: [Any] = []
        for path in paths {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            guard let events = try JSONSerialization.jsonObject(with: data) as? [Any] else {
                throw CocoaError(.fileReadCorruptFile, userInfo: [NSFilePathErrorKey: path])
            }
            all += events
        }
        try JSONSerialization.data(withJSONObject: all).write(to: URL(fileURLWithPath: destination), options: .atomic)
    }
}
