import PhalanxElastic
import PhalanxTCP

/// A few `MembershipCore`s wired together by hand for scripted scenarios: messages are
/// delivered in order when the test says so, links can be cut, processes killed, timers fired.
struct CoreHarness {
    var cores: [UInt16: MembershipCore] = [:]
    var witness = WitnessAcceptor()
    var inFlight: [(to: MemberAddress, from: MemberAddress, message: MembershipMessage)] = []
    var cut: Set<[UInt16]> = []
    var dead: Set<UInt16> = []
    /// The newest timer of each kind armed by each process.
    var timers: [UInt16: [MembershipTimer.Kind: MembershipTimer]] = [:]
    /// Every non-send action, by process.
    var actions: [UInt16: [MembershipAction]] = [:]

    static let witnessAddress = MemberAddress(id: MembershipCore.witnessID, host: "test", port: 9)

    static func address(_ port: UInt16, id: Int = MemberNode.newcomerID) -> MemberAddress {
        MemberAddress(id: id, host: "test", port: port)
    }

    /// Starts `count` members (ports 100, 101, …) of one membership, all at `step`.
    init(members count: Int, step: Int = 0, witness: Bool = true, lastStep: Int = 1_000) {
        let members = (0..<count).map { Self.address(UInt16(100 + $0), id: $0) }
        let membership = Membership(epoch: 1, members: members, nextID: count)
        for member in members {
            var core = MembershipCore(config: MembershipConfig(
                address: member, witness: witness ? Self.witnessAddress : nil, lastStep: lastStep, seed: UInt64(member.port)),
                holding: Holding(step: step))
            let started = core.start(membership: membership, id: member.id)
            cores[member.port] = core
            record(started, by: member.port)
        }
    }

    /// Adds a newcomer at `port` that asks the members at `directory`.
    mutating func join(port: UInt16, directory: [UInt16]) {
        var core = MembershipCore(config: MembershipConfig(address: Self.address(port), witness: Self.witnessAddress, lastStep: 1_000))
        let started = core.join(directory: directory.map { Self.address($0) })
        cores[port] = core
        record(started, by: port)
    }

    mutating func feed(_ port: UInt16, _ event: MembershipEvent) {
        guard !dead.contains(port), var core = cores[port] else { return }
        let result = core.handle(event)
        cores[port] = core
        record(result, by: port)
    }

    mutating func record(_ list: [MembershipAction], by port: UInt16) {
        for action in list {
            switch action {
            case let .send(message, to):
                inFlight.append((to, cores[port]?.config.address ?? Self.address(port), message))
            case let .armTimer(timer, _):
                timers[port, default: [:]][timer.kind] = timer
            case .stopTraining:
                actions[port, default: []].append(action)
                // The data plane stops at once, holding what was committed.
                if let holding = cores[port]?.holding { feed(port, .trainingStopped(holding: holding)) }
            default:
                actions[port, default: []].append(action)
            }
        }
    }

    /// Delivers messages (and the witness's answers) until none is left, at most `limit`.
    mutating func deliver(limit: Int = 10_000) {
        var delivered = 0
        while !inFlight.isEmpty, delivered < limit {
            let (to, from, message) = inFlight.removeFirst()
            delivered += 1
            guard !dead.contains(to.port), !dead.contains(from.port), !cut.contains([from.port, to.port]) else { continue }
            if to.port == Self.witnessAddress.port {
                for case let .send(answer, back) in witness.handle(message, from: from) {
                    inFlight.append((back, Self.witnessAddress, answer))
                }
            } else {
                feed(to.port, .received(message, from: from))
            }
        }
    }

    /// Fires the newest timer of `kind` of every live process that has one.
    mutating func fire(_ kind: MembershipTimer.Kind) {
        for port in timers.keys.sorted() {
            if let timer = timers[port]?[kind] { feed(port, .timerFired(timer)) }
        }
    }

    /// Cuts every link between the two groups (both directions).
    mutating func partition(_ left: [UInt16], _ right: [UInt16]) {
        for a in left { for b in right { cut.insert([a, b]); cut.insert([b, a]) } }
    }

    func core(_ port: UInt16) -> MembershipCore { cores[port] ?? MembershipCore(config: MembershipConfig(address: Self.address(port), lastStep: 0)) }

    func installed(_ port: UInt16) -> [Membership] {
        (actions[port] ?? []).compactMap { if case let .installRing(membership) = $0 { membership } else { nil } }
    }
}
