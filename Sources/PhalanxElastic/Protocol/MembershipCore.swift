import PhalanxTCP
import PhalanxTensor

/// The elastic membership protocol of one process as a pure state machine:
/// `(state, event) → (state, [action])`.
///
/// No sockets, threads, locks or clocks: a driver (the real member, or the deterministic
/// simulator in PhalanxTesting) turns messages, timers and data-plane outcomes into
/// `MembershipEvent`s and carries out the `MembershipAction`s that `handle(_:)` returns.
///
/// The change from epoch `e` to `e + 1` is one instance of single-decree Paxos among the
/// members of `e` (plus the witness when they are an even number): a coordinator gathers
/// promises from a quorum, proposes (re-proposing any proposal a promiser already accepted),
/// and the proposal is chosen once a quorum accepted it. Two proposals can therefore never be
/// chosen for one epoch, whatever the partitions, and a minority never trains on. The
/// proposal's step is the newest intact commit among the promisers, so no member of the new
/// membership ever loses a commit it holds. See docs/elastic.md.
public struct MembershipCore: Sendable {
    /// Where a process stands.
    public enum Phase: Hashable, Sendable {
        /// Asking the job to admit it (a newcomer, or a member left out of an epoch).
        case joining
        /// A member of `membership`; the state transfer that starts the epoch runs.
        case synchronizing
        /// A member of `membership`, training.
        case training
        /// A member of `membership` holding the job's last step.
        case finished
        /// Out of `membership`'s epoch, agreeing on the next one.
        case changing
        /// Out of the job for good (the job stopped, finished before admission, or refused it).
        case stopped(reason: String)
    }

    /// The sender id of the witness's votes.
    public static let witnessID = -2
    /// How many past decisions a member keeps to bring members that fell behind up to date.
    static let keptDecisions = 32

    /// The rules and timings.
    public private(set) var config: MembershipConfig
    /// This member's id (nil while it is not admitted).
    public internal(set) var id: Int?
    /// The membership of the current epoch (the last one this process was part of while joining).
    public internal(set) var membership: Membership
    /// Where this process stands.
    public internal(set) var phase: Phase
    /// What this process's training state holds.
    public internal(set) var holding: Holding
    /// The decisions that started the last epochs, oldest first.
    public internal(set) var decisions: [MembershipDecision] = []
    /// Set when a newcomer learned that the job finished (at this step) before admitting it.
    public internal(set) var jobFinishedAt: Int?

    // Acceptor state for the change out of `membership.epoch`.
    var promised = Ballot.none
    var accepted: AcceptedProposal?
    // Coordinator state.
    var round: CoordinatorRound?
    var highestRound = 0
    var failedRounds = 0
    var suspects: Set<Int> = []
    var pendingJoins: [MemberAddress] = []
    /// Where this process asks to be admitted while joining (and asks what it missed when its
    /// own epoch went silent): the last membership it knew, or the published directory.
    public internal(set) var directory: [MemberAddress] = []
    // Joining.
    var joinAttempts = 0
    // Waiting for the data plane to stop before answering anyone.
    var awaitingDataPlane = false
    var alertWhenStopped = false
    var deferred: [Deferred] = []
    var timerGenerations: [MembershipTimer.Kind: Int] = [:]
    var random: SeededGenerator

    /// A message held back until the data plane reported what the state holds.
    struct Deferred: Sendable {
        var message: MembershipMessage
        var sender: MemberAddress
    }

    /// A process that has not started: call `start(membership:id:)` or `join(directory:)`.
    public init(config: MembershipConfig, holding: Holding = Holding(step: 0)) {
        self.config = config
        self.membership = Membership(epoch: 0, members: [], nextID: 0)
        self.phase = .joining
        self.holding = holding
        self.random = SeededGenerator(seed: config.seed)
    }

    /// Starts as a member of the job's first membership (every member holds the same state).
    public mutating func start(membership: Membership, id: Int) -> [MembershipAction] {
        self.membership = membership
        self.id = id
        var out: [MembershipAction] = [.installRing(membership)]
        startTraining(&out)
        return out
    }

    /// Starts as a newcomer that asks the members at `directory` to admit it. It holds nothing
    /// of the job's state until a transfer gives it.
    public mutating func join(directory: [MemberAddress]) -> [MembershipAction] {
        var out: [MembershipAction] = []
        holding.intact = false
        beginJoining(directory: directory, &out)
        return out
    }

    /// Sets the job's last step (known once training starts): a member holding it is finished.
    /// A member that finished an earlier, shorter run trains on when the last step grows.
    public mutating func setLastStep(_ step: Int) -> [MembershipAction] {
        config.lastStep = step
        var out: [MembershipAction] = []
        if phase == .finished, holding.step < step { startTraining(&out) }
        return out
    }

    /// Feeds one event; returns what the driver must do, in order.
    public mutating func handle(_ event: MembershipEvent) -> [MembershipAction] {
        var out: [MembershipAction] = []
        switch event {
        case let .received(message, sender):
            receive(message, from: sender, &out)
        case let .timerFired(timer):
            guard timerGenerations[timer.kind] == timer.generation else { break }
            fire(timer.kind, &out)
        case let .suspected(peer, reason):
            // A suspicion of a process that is no longer a member (the heartbeat thread saw it
            // fall silent just as the change that removed it was installed) is old news: acting
            // on it would start a change that loses nobody.
            guard isMember, peer != id, membership.members.contains(where: { $0.id == peer }) else { break }
            leave(suspecting: [peer], reason: reason, alert: true, fromDataPlane: false, &out)
        case let .stepFailed(peers, reason):
            guard phase == .training, !awaitingDataPlane else { break }
            leave(suspecting: peers, reason: reason, alert: true, fromDataPlane: true, &out)
        case let .stepCommitted(step):
            guard phase == .training, !awaitingDataPlane else { break }
            holding = Holding(step: step)
            committed(&out)
        case let .transferFinished(newHolding):
            guard phase == .synchronizing, !awaitingDataPlane else { break }
            holding = newHolding
            startTraining(&out)
        case let .transferFailed(newHolding, peers, reason):
            guard phase == .synchronizing, !awaitingDataPlane else { break }
            holding = newHolding
            leave(suspecting: peers, reason: reason, alert: true, fromDataPlane: true, &out)
        case let .trainingStopped(newHolding):
            guard awaitingDataPlane else { break }
            holding = newHolding
            awaitingDataPlane = false
            afterLeaving(&out)
            let queued = deferred
            deferred = []
            for item in queued { receive(item.message, from: item.sender, &out) }
        }
        return out
    }

    /// Whether this process is a member of `membership` (training, synchronizing, finished or
    /// agreeing on the next epoch).
    public var isMember: Bool {
        switch phase {
        case .synchronizing, .training, .finished, .changing: true
        case .joining, .stopped: false
        }
    }

    // MARK: Helpers shared by the extensions

    /// The members of the current epoch other than this one.
    var others: [MemberAddress] { membership.members.filter { $0.id != id } }

    /// Whether the witness votes in the change out of the current epoch (an even membership).
    var witnessVotes: Bool {
        config.quorum == .majorityOrWitness && config.witness != nil && membership.members.count % 2 == 0
    }

    /// Whether `memberVotes` members (and the witness, when `witnessVote`) are a quorum of the
    /// current membership.
    func isQuorum(memberVotes: Int, witnessVote: Bool) -> Bool {
        let count = membership.members.count
        switch config.quorum {
        case .unsafeHalf:
            return memberVotes * 2 >= count
        case .majorityOrWitness:
            return memberVotes * 2 > count || (witnessVotes && witnessVote && memberVotes * 2 == count)
        }
    }

    /// Whether two addresses name the same process.
    static func sameProcess(_ a: MemberAddress, _ b: MemberAddress) -> Bool { a.host == b.host && a.port == b.port }

    /// Arms the timer of `kind` (replacing an armed one) after `delay` plus up to `jitter`.
    mutating func arm(_ kind: MembershipTimer.Kind, after delay: Duration, jitter: Duration = .zero, _ out: inout [MembershipAction]) {
        let generation = (timerGenerations[kind] ?? 0) + 1
        timerGenerations[kind] = generation
        var wait = delay
        let spread = jitter / .milliseconds(1)
        if spread >= 1 { wait += .milliseconds(Int(random.next() % UInt64(spread))) }
        out.append(.armTimer(MembershipTimer(kind: kind, generation: generation), after: wait))
    }

    /// Makes an armed timer of `kind` stale.
    mutating func cancel(_ kind: MembershipTimer.Kind) {
        timerGenerations[kind] = (timerGenerations[kind] ?? 0) + 1
    }

    /// Cancels every timer (an epoch installed, or the job over for this process).
    mutating func cancelAllTimers() {
        for kind in [MembershipTimer.Kind.awaitCoordinator, .roundDeadline, .retryRound, .retryJoin] { cancel(kind) }
    }
}

extension MembershipCore {
    /// The proposal this member accepted for the change out of the current epoch (what a new
    /// coordinator must re-propose), if any.
    public var acceptedProposal: AcceptedProposal? { accepted }
    /// Whether this member is waiting for its data plane to stop before it answers anyone.
    public var isWaitingForDataPlane: Bool { awaitingDataPlane }
}
