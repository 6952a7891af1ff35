import Foundation

/// The progress line trainers print every N steps:
/// `step 400/1500  epoch 18  loss 0.1234  3120 samples/s  world 4  ETA 0:12`.
public struct ProgressLine: Sendable {
    /// When the run (or its current stretch of steps) started.
    public var start: Date
    /// The step the timing starts from.
    public var startStep: Int
    /// Total steps of the run.
    public var totalSteps: Int

    /// Starts timing at `startStep` of `totalSteps`.
    public init(startStep: Int, totalSteps: Int, start: Date = Date()) {
        self.start = start
        self.startStep = startStep
        self.totalSteps = totalSteps
    }

    /// The line after `step` steps (completed) with this loss, epoch (0-based), world size and
    /// global batch size.
    public func line(step: Int, epoch: Int, loss: Double, worldSize: Int, batchSize: Int, now: Date = Date()) -> String {
        let elapsed = max(now.timeIntervalSince(start), 1e-9)
        let done = max(step - startStep, 0)
        let samplesPerSecond = Double(done * batchSize) / elapsed
        let remaining = done > 0 ? elapsed / Double(done) * Double(max(totalSteps - step, 0)) : .nan
        let head = String(format: "step %d/%d  epoch %d  loss %.4f  %.0f samples/s  world %d",
                          step, totalSteps, epoch + 1, loss, samplesPerSecond, worldSize)
        return head + "  ETA " + ProgressLine.clock(remaining)
    }

    /// "1:02:03", "2:03", or "?" for an unknown time.
    public static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        let total = Int(seconds.rounded())
        let (h, m, s) = (total / 3600, total / 60 % 60, total % 60)
        return h > 0 ? String(format: "%d:%02d:%02d", h, m, s) : String(format: "%d:%02d", m, s)
    }
}
