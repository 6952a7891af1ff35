import Foundation

/// Whether the benchmark's scraper thread scrapes now, and whether it should end; the training
/// thread sets both.
final class ScrapeSwitch: @unchecked Sendable {
    // `scraping` and `ended` are guarded by `lock`.
    private let lock = NSLock()
    private var scraping = false
    private var ended = false

    /// Scrape while true.
    var on: Bool {
        get {
            lock.lock()
            defer { lock.unlock() }
            return scraping
        }
        set {
            lock.lock()
            scraping = newValue
            lock.unlock()
        }
    }

    /// Whether the scraper should end.
    var finished: Bool {
        lock.lock()
        defer { lock.unlock() }
        return ended
    }

    /// Ends the scraper.
    func finish() {
        lock.lock()
        ended = true
        lock.unlock()
    }
}
