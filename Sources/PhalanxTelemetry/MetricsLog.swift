import Foundation

/// A JSON-lines metrics file: one object per line, written as it comes (appended, flushed per
/// line), so a crashed run keeps what it measured and other tools can follow it live.
///
/// ```swift
/// let metrics = try MetricsLog(path: "run/metrics.jsonl")
/// metrics.write(["event": "step", "step": 12, "loss": 0.41, "world_size": 4])
/// ```
public final class MetricsLog: @unchecked Sendable {
    /// The file's path.
    public let path: String
    private let handle: FileHandle
    private let lock = NSLock()

    /// Creates (or truncates) the file at `path`, creating its directory.
    /// - Throws: `CocoaError` when the file cannot be created.
    public init(path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
        }
        handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        self.path = path
    }

    deinit { try? handle.close() }

    /// Appends one object (keys sorted). Values must be JSON-compatible (numbers, strings,
    /// booleans, arrays, dictionaries); a "time" key (seconds since 1970) is added if missing.
    public func write(_ fields: [String: Any]) {
        var object = fields
        if object["time"] == nil { object["time"] = Date().timeIntervalSince1970 }
        guard JSONSerialization.isValidJSONObject(object),
              let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        lock.lock()
        defer { lock.unlock() }
        handle.write(data + Data([0x0A]))
    }

    /// Reads a metrics file back: one dictionary per valid line.
    public static func read(path: String) -> [[String: Any]] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }
    }
}
