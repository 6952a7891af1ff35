/// A failed collective: which operation, which call (sequence number), which peer, and why.
///
/// `code` says what kind of failure it was; `description` is a full sentence that names the
/// rank that reported it, the peer, the operation and its sequence number.
public struct CollectiveError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The kind of failure. A struct over a private enum so that kinds can be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case connectionLost, timeout, sizeMismatch, protocolViolation, authenticationFailed
            case peerAborted, closed, invalidArgument, backendError
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A neighbour's connection closed or reset (the neighbour died or closed its transport).
        public static let connectionLost = Code(.connectionLost)
        /// No progress within the timeout (a hung or stopped peer, or a peer that never came).
        public static let timeout = Code(.timeout)
        /// Ranks called the collective with different element counts.
        public static let sizeMismatch = Code(.sizeMismatch)
        /// A frame was stale, foreign or malformed.
        public static let protocolViolation = Code(.protocolViolation)
        /// A peer failed to prove it knows the job secret.
        public static let authenticationFailed = Code(.authenticationFailed)
        /// Another rank failed and told its neighbours; the message says what it saw.
        public static let peerAborted = Code(.peerAborted)
        /// The communicator was already failed or shut down.
        public static let closed = Code(.closed)
        /// The call's arguments are invalid (a root outside the world, a negative count, …).
        public static let invalidArgument = Code(.invalidArgument)
        /// The backend (e.g. MPI) returned an error.
        public static let backendError = Code(.backendError)

        /// The code's name.
        public var description: String { base.rawValue }
    }

    /// The kind of failure.
    public var code: Code
    /// The operation, e.g. "allReduce".
    public var operation: String
    /// The per-communicator sequence number of the call (0 for the first collective).
    public var sequence: UInt64
    /// The rank that reports the error.
    public var rank: Int
    /// The peer concerned (the lost neighbour, the rank that aborted first, …), if known.
    public var peer: Int?
    /// What happened, in words.
    public var message: String

    /// Makes an error.
    public init(_ code: Code, operation: String, sequence: UInt64, rank: Int, peer: Int? = nil, message: String) {
        self.code = code
        self.operation = operation
        self.sequence = sequence
        self.rank = rank
        self.peer = peer
        self.message = message
    }

    /// "rank 1: allReduce #12 failed (connectionLost) with peer rank 2: connection reset".
    public var description: String {
        let peerText = peer.map { " with peer rank \($0)" } ?? ""
        return "rank \(rank): \(operation) #\(sequence) failed (\(code))\(peerText): \(message)"
    }
}

extension CollectiveError {
    /// An error during the collective that `context` (the header being sent or expected)
    /// belongs to: its kind names the operation and its sequence number is reported.
    public init(_ code: Code, during context: MessageHeader?, rank: Int, peer: Int? = nil, message: String) {
        self.init(
            code, operation: context?.kind.description ?? "exchange", sequence: context?.sequence ?? 0,
            rank: rank, peer: peer, message: message)
    }
}
