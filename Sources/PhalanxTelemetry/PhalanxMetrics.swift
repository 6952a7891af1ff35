import CoreMetrics
import Foundation

/// The job's metrics, recorded through apple/swift-metrics (whatever backend the program
/// bootstrapped: Prometheus through `PhalanxPrometheus`, StatsD, OpenTelemetry, or none) and
/// the `/healthz` reading. Names and units follow Prometheus' conventions; docs/monitoring.md
/// lists them all.
///
/// The elastic member records steps, changes of members, recovery phases, all-reduces,
/// checkpoints, heartbeat misses and joins; the training program adds its loss and samples
/// with `record(loss:samples:)`. A step's calls cost about 0.25 µs together with Prometheus
/// behind them (`phalanx-bench metrics`): atomic updates and two short locks, no allocation.
public final class PhalanxMetrics: @unchecked Sendable {
    /// How long each phase of one recovery took, in seconds.
    public struct RecoveryPhases: Sendable, Equatable {
        /// From the start of the step that failed to the failure seen by this member.
        public var detect: Double
        /// From the failure seen to the new membership agreed.
        public var agree: Double
        /// From the agreement to the new ring built.
        public var rebuild: Double
        /// From the ring built to the committed state restored (training resumes).
        public var restore: Double

        /// The four phases.
        public init(detect: Double, agree: Double, rebuild: Double, restore: Double) {
            self.detect = detect
            self.agree = agree
            self.rebuild = rebuild
            self.restore = restore
        }
    }

    /// The `/healthz` reading, updated with the metrics.
    public let health = HealthStatus()

    private let steps: Counter
    private let discarded: Counter
    private let step: Gauge
    private let lastStepTime: Gauge
    private let stepSeconds: Gauge
    private let loss: Gauge
    private let samples: Counter
    private let throughput: Gauge
    private let worldSize: Gauge
    private let minimumWorldSize: Gauge
    private let epoch: Gauge
    private let changes: [String: Counter]
    private let lost: Counter
    private let joined: Counter
    private let phases: [CoreMetrics.Timer]
    private let recovery: CoreMetrics.Timer
    private let reduceBytes: Counter
    private let reduceSeconds: FloatingPointCounter
    private let reduceCount: Counter
    private let busBandwidth: Gauge
    private let checkpoints: Counter
    private let checkpointStep: Gauge
    private let checkpointTime: Gauge
    private let checkpointBytes: Gauge
    private let checkpointWrite: CoreMetrics.Timer
    private let checkpointAge: Gauge
    private let checkpointInterval: Gauge
    private let heartbeatMisses: Counter
    private let joinsRefused: Counter
    private let connectionsRefused: Counter

    // The metric handles are immutable (swift-metrics handlers are thread-safe); the fields
    // below are guarded by `lock` (the training thread and the checkpoint writer's thread).
    private let lock = NSLock()
    private var lastSamplesAt: Date?
    private var checkpointBase: Int?
    private var checkpointsExpected = false
    private var refusedSoFar = 0

    /// The causes `phalanx_membership_changes_total` is labelled with.
    public static let changeCauses = ["lost", "joined", "rejoined"]
    /// The phases `phalanx_recovery_phase_seconds` is labelled with, in order.
    public static let phaseNames = ["detect", "agree", "rebuild", "restore"]

    /// Metrics made by `factory` (by default the one the program bootstrapped, else none).
    /// Every series exists from here on at zero, so that rates and increases see the first event.
    public init(factory: MetricsFactory = MetricsSystem.factory) {
        func counter(_ name: String, _ dimensions: [(String, String)] = []) -> Counter { Counter(label: name, dimensions: dimensions, factory: factory) }
        func gauge(_ name: String) -> Gauge { Gauge(label: name, factory: factory) }
        steps = counter("phalanx_steps_total")
        discarded = counter("phalanx_steps_discarded_total")
        step = gauge("phalanx_step")
        lastStepTime = gauge("phalanx_last_step_timestamp_seconds")
        stepSeconds = gauge("phalanx_step_duration_seconds")
        loss = gauge("phalanx_loss")
        samples = counter("phalanx_samples_total")
        throughput = gauge("phalanx_samples_per_second")
        worldSize = gauge("phalanx_world_size")
        minimumWorldSize = gauge("phalanx_world_size_minimum")
        epoch = gauge("phalanx_membership_epoch")
        changes = Dictionary(uniqueKeysWithValues: Self.changeCauses.map { ($0, counter("phalanx_membership_changes_total", [("cause", $0)])) })
        lost = counter("phalanx_members_lost_total")
        joined = counter("phalanx_members_joined_total")
        phases = Self.phaseNames.map { CoreMetrics.Timer(label: "phalanx_recovery_phase_seconds", dimensions: [("phase", $0)], factory: factory) }
        recovery = CoreMetrics.Timer(label: "phalanx_recovery_seconds", factory: factory)
        reduceBytes = counter("phalanx_allreduce_bytes_total")
        reduceSeconds = FloatingPointCounter(label: "phalanx_allreduce_seconds_total", factory: factory)
        reduceCount = counter("phalanx_allreduce_total")
        busBandwidth = gauge("phalanx_allreduce_bus_bandwidth_bytes_per_second")
        checkpoints = counter("phalanx_checkpoints_total")
        checkpointStep = gauge("phalanx_checkpoint_last_step")
        checkpointTime = gauge("phalanx_checkpoint_last_timestamp_seconds")
        checkpointBytes = gauge("phalanx_checkpoint_size_bytes")
        checkpointWrite = CoreMetrics.Timer(label: "phalanx_checkpoint_write_seconds", factory: factory)
        checkpointAge = gauge("phalanx_checkpoint_age_steps")
        checkpointInterval = gauge("phalanx_checkpoint_interval_steps")
        heartbeatMisses = counter("phalanx_heartbeat_misses_total")
        joinsRefused = counter("phalanx_joins_refused_total")
        connectionsRefused = counter("phalanx_connections_refused_total")
    }

    /// Metrics that go nowhere (swift-metrics' no-op handler): what a program that did not ask
    /// for metrics pays.
    public static func disabled() -> PhalanxMetrics { PhalanxMetrics(factory: NOOPMetricsHandler.instance) }

    // MARK: Training

    /// A step was committed: `step` is the next one to train, `seconds` how long it took.
    public func stepCommitted(step next: Int, worldSize members: Int, epoch current: UInt64, seconds: Double) {
        steps.increment()
        step.record(next)
        lastStepTime.record(Date().timeIntervalSince1970)
        stepSeconds.record(seconds)
        worldSize.record(members)
        epoch.record(Double(current))
        lock.lock()
        let base = checkpointBase ?? (next - 1)
        checkpointBase = base
        let expected = checkpointsExpected
        lock.unlock()
        if expected { checkpointAge.record(next - base) }
        health.update {
            $0.ready = true
            $0.step = next
            $0.epoch = current
            $0.members = members
        }
    }

    /// A step failed and was discarded on every member; training is not ready until the
    /// members agreed on the next membership and restored the committed state.
    public func stepDiscarded() {
        discarded.increment()
        notReady()
    }

    /// The data plane stopped (a failure seen, a change begins).
    public func notReady() { health.update { $0.ready = false } }

    /// The training program's loss of the step and the samples the whole job trained in it
    /// (the global batch); samples per second are measured between calls.
    public func record(loss value: Double, samples count: Int) {
        loss.record(value)
        samples.increment(by: count)
        let now = Date()
        lock.lock()
        let previous = lastSamplesAt
        lastSamplesAt = now
        lock.unlock()
        if let previous, now > previous { throughput.record(Double(count) / now.timeIntervalSince(previous)) }
    }

    /// Who this process is in the job, and the fewest members the job may go on with.
    public func identify(member: Int?, minimumWorldSize minimum: Int) {
        minimumWorldSize.record(minimum)
        health.update { $0.member = member }
    }

    // MARK: Membership

    /// One change of members lived through: `lost` and `joined` members, whether this member
    /// rejoined after being evicted, and how long each recovery phase took.
    public func membershipChanged(lost lostCount: Int, joined joinedCount: Int, rejoined: Bool, phases timing: RecoveryPhases, member: Int) {
        if lostCount > 0 { changes["lost"]?.increment() }
        if joinedCount > 0 { changes["joined"]?.increment() }
        if rejoined { changes["rejoined"]?.increment() }
        lost.increment(by: lostCount)
        joined.increment(by: joinedCount)
        let values = [timing.detect, timing.agree, timing.rebuild, timing.restore]
        for (timer, seconds) in zip(phases, values) { timer.recordSeconds(max(0, seconds)) }
        recovery.recordSeconds(max(0, values.reduce(0, +)))
        health.update { $0.member = member }
    }

    /// A heartbeat deadline passed without news from a peer (it is suspected).
    public func heartbeatMissed() { heartbeatMisses.increment() }

    /// A newcomer was told to come back later or go away.
    public func joinRefused() { joinsRefused.increment() }

    /// The listener's count of refused connections (strangers, wrong secrets) is `total` now.
    public func connectionsRefused(total: Int) {
        lock.lock()
        let added = total - refusedSoFar
        refusedSoFar = max(refusedSoFar, total)
        lock.unlock()
        if added > 0 { connectionsRefused.increment(by: added) }
    }

    // MARK: Data plane

    /// One all-reduce of `bytes` over `members` took `seconds`; the bus bandwidth is NCCL's:
    /// bytes × 2(n−1)/n per second.
    public func allReduced(bytes: Int, seconds: Double, members: Int) {
        reduceCount.increment()
        reduceBytes.increment(by: bytes)
        reduceSeconds.increment(by: seconds)
        if seconds > 0, members > 1 {
            busBandwidth.record(Double(bytes) * 2 * Double(members - 1) / Double(members) / seconds)
        }
    }

    /// Every how many steps this process's job takes a durable checkpoint (0: none; then
    /// `phalanx_checkpoint_age_steps` stays 0: no alert for a job that chose to keep none).
    public func expectCheckpoints(every interval: Int) {
        lock.lock()
        checkpointsExpected = interval > 0
        lock.unlock()
        checkpointInterval.record(max(0, interval))
    }

    /// The job took a checkpoint of `step` that another member writes (the age counts from it).
    public func checkpointTaken(step taken: Int) {
        lock.lock()
        checkpointBase = max(checkpointBase ?? taken, taken)
        lock.unlock()
    }

    /// The checkpoint file at `path` (of `step`) was written in `took`: its size read from disk.
    public func checkpointWritten(path: String, step written: Int, took: Duration) {
        let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        checkpointWritten(step: written, bytes: bytes, seconds: Double(took / .microseconds(1)) / 1e6)
    }

    /// A durable checkpoint of `step` was written: `bytes` on disk, in `seconds`.
    public func checkpointWritten(step written: Int, bytes: Int, seconds: Double) {
        checkpoints.increment()
        checkpointStep.record(written)
        checkpointTime.record(Date().timeIntervalSince1970)
        checkpointBytes.record(bytes)
        checkpointWrite.recordSeconds(seconds)
        lock.lock()
        checkpointBase = max(checkpointBase ?? written, written)
        lock.unlock()
    }
}
