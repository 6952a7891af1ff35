import PhalanxElastic
import PhalanxTCP

/// What a simulated data plane reports back to its process.
enum DataResult: Hashable {
    case committed(SimulatedState)
    case stepFailed(suspects: [Int])
    case transferred(SimulatedState)
    case transferFailed(SimulatedState, suspects: [Int])
    case stopped(syncReceiver: Bool)
}

/// A collective of one epoch: a training step, or the state transfer that starts the epoch.
struct CollectiveKey: Hashable {
    var epoch: UInt64
    /// The step, or -1 for the state transfer.
    var step: Int
}

/// A collective in flight: who takes part, who has entered (with the state they brought).
struct Collective {
    var participants: [Int]
    var entered: [Int: SimulatedState] = [:]
    var left: Set<Int> = []
    /// The state transfer's source (a process index).
    var source: Int?
    var completing = false
}

/// Everything that happens in a simulation, at a simulated time.
enum SimulationEvent {
    /// A message reaches a process (or the witness, index -1).
    case deliver(to: Int, MembershipMessage, from: MemberAddress, fromIndex: Int)
    case timer(Int, MembershipTimer)
    /// A collective's work is over (all members entered and the time it takes passed).
    case complete(CollectiveKey)
    case data(Int, token: Int, DataResult)
    /// A process's collective deadline (the transport's failure timeout).
    case deadline(Int, token: Int)
    case inject
    case thaw(Int)
    case heal(partition: Int)
    case spawn
    case endOfFaults
}
