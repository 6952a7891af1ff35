import Foundation
import Logging
import PhalanxTCP

extension ElasticMember {
    /// An answer decided under `lock` and sent after it is released (nil: close unanswered).
    typealias Answer = (request: ControlRequest, bytes: [UInt8]?)

    /// Sends answers; never called with `lock` held (a reply may block for up to a second).
    func send(_ answers: [Answer]) {
        for (request, bytes) in answers {
            if let bytes { request.reply(bytes) } else { request.close() }
        }
    }

    /// Control messages reaching this member's listener (on the connection's thread).
    func handle(_ request: ControlRequest) {
        guard let message = try? ControlMessage.decode(request.payload) else {
            logger.warning("dropped an undecodable control message from \(request.endpoint)")
            request.close()
            return
        }
        var answers: [Answer] = []
        lock.lock()
        switch message.kind {
        case .probe:
            // Answered at once: "which epoch are you at?" (a coordinator checking that the
            // members it is about to declare lost have not moved on without it).
            answers.append((request, ControlMessage(kind: .probe, epoch: sharedMembership.epoch, sender: id).encoded()))
        case .recover where message.epoch < sharedMembership.epoch:
            answers.append(answerLate(request, message))
        case .recover:
            pending.append((request, message))
            interruption.trigger("member \(message.sender) started a recovery")
            lock.broadcast()
        case .join where sharedMembership.leader?.id == id || (recovering && !sharedMembership.members.isEmpty):
            pending.append((request, message))
            interruption.trigger("a new member asks to join")
            lock.broadcast()
        case .join:
            answers.append((request, redirect()))
        default:
            answers.append((request, nil))
        }
        lock.unlock()
        send(answers)
    }

    /// "Ask the leader": its address, or a refusal when there is none this member can name
    /// (it is itself between memberships).
    func redirect() -> [UInt8] {
        guard let leader = sharedMembership.leader, leader.id != id else {
            var refuse = ControlMessage(kind: .refuse, epoch: sharedMembership.epoch, sender: id)
            refuse.reason = "this member is not part of a membership right now; ask another"
            return refuse.encoded()
        }
        var message = ControlMessage(kind: .redirect, epoch: sharedMembership.epoch, sender: id)
        message.address = leader
        return message.encoded()
    }

    /// The answer to a recovery report for an epoch that is already over (decided under `lock`):
    /// the decision when the sender is in it, otherwise "stale" (it was declared lost).
    func answerLate(_ request: ControlRequest, _ message: ControlMessage) -> Answer {
        if let decision = lastDecision, decision.membership.position(of: message.sender) != nil, decision.membership.epoch &- 1 == message.epoch {
            var reply = ControlMessage(kind: .decision, epoch: decision.membership.epoch, sender: id)
            reply.decision = decision
            return (request, reply.encoded())
        }
        var reply = ControlMessage(kind: .stale, epoch: sharedMembership.epoch, sender: id)
        reply.reason = "epoch \(message.epoch) is over (now \(sharedMembership.epoch)) and member \(message.sender) is not in the new membership"
        reply.address = sharedMembership.leader
        return (request, reply.encoded())
    }

    /// After a decision: the answers to what was left in the queue (decided under `lock`). Joins
    /// stay queued at the leader (they start the next change); elsewhere they are redirected.
    func answerLeftovers() -> [Answer] {
        var keep: [(ControlRequest, ControlMessage)] = []
        var answers: [Answer] = []
        for (request, message) in pending {
            switch message.kind {
            case .recover where message.epoch < sharedMembership.epoch:
                answers.append(answerLate(request, message))
            case .join where sharedMembership.leader?.id == id:
                keep.append((request, message))
            case .join:
                answers.append((request, redirect()))
            default:
                keep.append((request, message))
            }
        }
        pending = keep
        if !keep.isEmpty { interruption.trigger("requests arrived during the last change") }
        return answers
    }

    /// Answers everything queued with a refusal (this member is leaving or starting over), so
    /// no sender waits for its timeout.
    func dismissPending(_ reason: String) {
        lock.lock()
        let queued = pending
        pending = []
        lock.unlock()
        var refuse = ControlMessage(kind: .refuse, epoch: 0, sender: id)
        refuse.reason = reason
        send(queued.map { ($0.0, refuse.encoded()) })
    }

    // MARK: Joining

    /// Asks the members at `addresses` ("host:port") to admit this process, following redirects
    /// to the leader, and builds its ring once admitted; the state arrives in `run`.
    /// - Throws: `ElasticError.joinRefused`, `.noMemberReachable`, or ring errors.
    public static func join(
        addresses: [String], host: String, credentials: JobCredentials, options: ElasticOptions = ElasticOptions(),
        logger: Logger = Logger(label: "phalanx.elastic")
    ) throws -> ElasticMember {
        try options.validate()
        let node = try MemberNode(host: host, credentials: credentials, logger: logger)
        let heartbeat = try HeartbeatService(host: host, port: node.port, credentials: credentials,
                                             interval: options.heartbeatInterval, timeout: options.heartbeatTimeout, logger: logger)
        let placeholder = Membership(epoch: 0, members: [], nextID: 0)
        let member = ElasticMember(options: options, node: node, heartbeat: heartbeat, membership: placeholder, id: MemberNode.newcomerID, logger: logger)
        member.listen()
        try member.admit(candidates: addresses.compactMap(parseAddress))
        return member
    }

    static func parseAddress(_ text: String) -> MemberAddress? {
        let parts = text.trimmingCharacters(in: .whitespaces).split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]) else { return nil }
        return MemberAddress(id: MemberNode.newcomerID, host: String(parts[0]), port: port)
    }

    /// The joining protocol: ask, follow redirects, apply the decision.
    func admit(candidates: [MemberAddress]) throws {
        var queue = candidates
        var tried: [String] = []
        var lastError = candidates.isEmpty ? "no address given" : "the join deadline passed"
        let deadline = ContinuousClock.now + options.startTimeout
        var request = ControlMessage(kind: .join, epoch: 0, sender: MemberNode.newcomerID)
        request.address = node.address(id: MemberNode.newcomerID)
        let wait = options.agreementTimeout * 2 + options.joinWaitTimeout + .seconds(5)
        var hops = 0
        while !queue.isEmpty, ContinuousClock.now < deadline, hops < 32 {
            hops += 1
            let target = queue.removeFirst()
            let reply: ControlMessage
            do {
                reply = try ControlMessage.decode(try node.request(request.encoded(), to: target, id: MemberNode.newcomerID, epoch: 0, timeout: wait))
            } catch {
                tried.append("\(target.host):\(target.port) (\(error))")
                lastError = "\(error)"
                continue
            }
            switch reply.kind {
            case .redirect:
                if let leader = reply.address {
                    queue.insert(MemberAddress(id: MemberNode.newcomerID, host: leader.host, port: leader.port), at: 0)
                    Thread.sleep(forTimeInterval: 0.02)
                }
            case .refuse where reply.reason?.contains("ask another") == true:
                tried.append("\(target.host):\(target.port) (\(reply.reason ?? "refused"))")
            case .refuse, .stop, .stale:
                throw ElasticError.joinRefused(reason: reply.reason ?? "\(reply.kind)")
            case .decision:
                guard let decision = reply.decision, let assigned = reply.address else {
                    throw ElasticError.protocolViolation("a decision without the assigned id")
                }
                node.memberID = assigned.id
                lock.lock()
                id = assigned.id
                sharedMembership = decision.membership
                lastDecision = decision
                lock.unlock()
                try connect(decision.membership, previous: nil, previousMembers: [])
                pendingSyncSource = decision.membership.position(of: decision.source)
                logger.info("member \(id) admitted at epoch \(decision.membership.epoch) with \(decision.membership.members.count) members")
                return
            case .recover, .join, .probe:
                throw ElasticError.protocolViolation("unexpected \(reply.kind) in answer to a join")
            }
        }
        throw ElasticError.noMemberReachable(tried: tried, lastError: lastError)
    }
}
