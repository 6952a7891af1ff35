import PhalanxCollectives

/// Wraps a transport and makes chosen exchanges fail, so tests can check how a training loop
/// reacts to a lost peer, a timeout or a corrupt frame without killing processes.
public final class FaultInjectingTransport: Transport {
    /// A fault to inject.
    public enum Fault: Sendable, Equatable {
        /// Throw `code` instead of performing the exchange.
        case fail(CollectiveError.Code, message: String)
        /// Flip the bits of the first received payload byte after the exchange (silent corruption,
        /// for checking that higher layers catch it).
        case corruptPayload
    }

    /// When to inject: at the `exchange` number `exchangeIndex` (0-based) of collective
    /// sequence `sequence`.
    public struct Trigger: Sendable, Hashable {
        /// The collective's sequence number.
        public var sequence: UInt64
        /// The exchange within the collective.
        public var exchangeIndex: Int
        /// Makes a trigger.
        public init(sequence: UInt64, exchangeIndex: Int = 0) {
            self.sequence = sequence
            self.exchangeIndex = exchangeIndex
        }
    }

    private let base: any Transport
    private var faults: [Trigger: Fault]
    private var exchangeCounts: [UInt64: Int] = [:]
    /// The faults injected so far, in order.
    public private(set) var injected: [(Trigger, Fault)] = []

    /// Wraps `base`, injecting `faults`.
    public init(wrapping base: any Transport, faults: [Trigger: Fault]) {
        self.base = base
        self.faults = faults
    }

    /// The wrapped transport's rank.
    public var rank: Int { base.rank }
    /// The wrapped transport's world size.
    public var worldSize: Int { base.worldSize }

    /// Performs the exchange unless a fault is due.
    public func exchange(
        send header: MessageHeader?, _ outgoing: UnsafeRawBufferPointer,
        receive expected: MessageHeader?, into incoming: UnsafeMutableRawBufferPointer,
        timeout: Duration, progress: (Int) throws -> Void
    ) throws {
        let context = header ?? expected
        let sequence = context?.sequence ?? 0
        let index = exchangeCounts[sequence, default: 0]
        exchangeCounts[sequence] = index + 1
        let trigger = Trigger(sequence: sequence, exchangeIndex: index)
        guard let fault = faults.removeValue(forKey: trigger) else {
            return try base.exchange(send: header, outgoing, receive: expected, into: incoming, timeout: timeout, progress: progress)
        }
        injected.append((trigger, fault))
        switch fault {
        case let .fail(code, message):
            throw CollectiveError(code, during: context, rank: rank, peer: (rank - 1 + worldSize) % worldSize, message: "injected: \(message)")
        case .corruptPayload:
            try base.exchange(send: header, outgoing, receive: expected, into: incoming, timeout: timeout) { _ in }
            if let first = incoming.baseAddress, incoming.count > 0 {
                first.storeBytes(of: ~first.load(as: UInt8.self), as: UInt8.self)
            }
            try progress(incoming.count)
        }
    }

    /// Forwards to the wrapped transport.
    public func abort(_ error: CollectiveError) { base.abort(error) }
}
