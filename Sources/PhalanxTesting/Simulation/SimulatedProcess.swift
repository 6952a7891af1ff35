import PhalanxElastic
import PhalanxTCP

/// What a simulated process's training state holds: the step, a digest standing for the
/// weights (the fault-free run's digest of each step is known), and whether a failed transfer
/// overwrote part of it.
struct SimulatedState: Hashable {
    var step: Int
    var digest: UInt64
    var damaged = false

    /// What the process reports to its core.
    var holding: Holding { Holding(step: step, intact: !damaged) }
}

/// The work a process's data plane is doing.
enum DataOperation: Hashable {
    /// Step `step` of `epoch` (an all-reduce among the ring).
    case step(epoch: UInt64, step: Int)
    /// The state transfer that starts `epoch`, from member `source`.
    case sync(epoch: UInt64, source: Int)
}

/// One simulated OS process: a membership core, its training state and data plane, and
/// whether it is alive or frozen.
struct SimulatedProcess {
    let index: Int
    let address: MemberAddress
    var core: MembershipCore
    var state: SimulatedState
    var alive = true
    var frozen = false
    /// Events that reached the process while it was frozen, in arrival order.
    var held: [SimulationEvent] = []
    /// The data plane's current work, with a token that tells its results from stale ones.
    var operation: DataOperation?
    var token = 0
    /// The ring of the epoch the data plane works in (process indices in ring order).
    var ring: [Int] = []
    var ringEpoch: UInt64 = 0
    /// The newest decision the checker has seen this process install.
    var checkedEpoch: UInt64 = 0

    /// Whether the process is done: it holds the last step, or it left the job for good.
    var isDone: Bool {
        switch core.phase {
        case .finished, .stopped: true
        default: false
        }
    }
}
