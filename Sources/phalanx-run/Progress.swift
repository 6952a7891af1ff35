import Foundation

/// Durable progress of a job, as the launcher sees it: when the newest file in the checkpoint
/// directory changed last.
struct Progress {
    let directory: String?
    private var newest: Date?
    private var since = Date()

    /// Starts counting now.
    init(directory: String?) {
        self.directory = directory
        newest = Self.newestModification(in: directory)
    }

    /// Whether nothing new was saved for `timeout` (looks at the directory each call).
    mutating func stalled(for timeout: Duration) -> Bool {
        let now = Date()
        let latest = Self.newestModification(in: directory)
        if let latest, latest != newest {
            newest = latest
            since = now
        }
        return now.timeIntervalSince(since) > Double(timeout / .milliseconds(1)) / 1000
    }

    static func newestModification(in directory: String?) -> Date? {
        guard let directory, let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return nil }
        return names.compactMap { name in
            (try? FileManager.default.attributesOfItem(atPath: "\(directory)/\(name)"))?[.modificationDate] as? Date
        }.max()
    }
}
