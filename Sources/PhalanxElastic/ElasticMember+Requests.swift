import Foundation
import Logging
import PhalanxTCP

extension ElasticMember {
    /// Control messages reaching this member's listener (on the connection's thread).
    func handle(_ request: ControlRequest) {
        guard let message = try? ControlMessage.decode(request.payload) else {
            logger.warning("member \(id) dropped an undecodable control message from \(request.endpoint)")
            request.close()
            return
        }
        lock.lock()
        defer { lock.unlock() }
        switch message.kind {
        case .recover where message.epoch < sharedMembership.epoch:
            answerLate(request, message)
        case .recover:
            pending.append((request, message))
            if !recovering { interruption.trigger("member \(message.sender) started a recovery") }
            lock.broadcast()
        case .join where recovering || sharedMembership.leader?.id == id:
            pending.append((request, message))
            if !recovering { interruption.trigger("a new member asks to join") }
            lock.broadcast()
        case .join:
            var redirect = ControlMessage(kind: .redirect, epoch: sharedMembership.epoch, sender: id)
            redirect.address = sharedMembership.leader
            request.reply(redirect.encoded())
        default:
            request.close()
        }
    }

    /// Answers a recovery report for an epoch that is already over (called under `lock`): the
    /// decision when the sender is in it, otherwise "stale" (it was declared lost).
    func answerLate(_ request: ControlRequest, _ message: ControlMessage) {
        if let decision = lastDecision, decision.membership.position(of: message.sender) != nil, message.epoch + 1 == decision.membership.epoch {
            var reply = ControlMessage(kind: .decision, epoch: decision.membership.epoch, sender: id)
            reply.decision = decision
            request.reply(reply.encoded())
        } else {
            var reply = ControlMessage(kind: .stale, epoch: sharedMembership.epoch, sender: id)
            reply.reason = "epoch \(message.epoch) is over (now \(sharedMembership.epoch)) and member \(message.sender) is not in the new membership"
            reply.address = sharedMembership.leader
            request.reply(reply.encoded())
        }
    }

    /// After a decision: answers what was left in the queue (called under `lock`). Joins stay
    /// queued at the leader (they start the next change); elsewhere they are redirected.
    func answerLeftovers() {
        var keep: [(ControlRequest, ControlMessage)] = []
        for (request, message) in pending {
            switch message.kind {
            case .recover where message.epoch < sharedMembership.epoch:
                answerLate(request, message)
            case .join where sharedMembership.leader?.id == id:
                keep.append((request, message))
            case .join:
                var redirect = ControlMessage(kind: .redirect, epoch: sharedMembership.epoch, sender: id)
                redirect.address = sharedMembership.leader
                request.reply(redirect.encoded())
            default:
                keep.append((request, message))
            }
        }
        pending = keep
        if !keep.isEmpty { interruption.trigger("requests arrived during the last change") }
    }

    // MARK: Joining

    /// Asks the members at `addresses` ("host:port") to admit this process, following redirects
    /// to the leader, and builds its ring once admitted; the state arrives in `run`.
    /// - Throws: `ElasticError.joinRefused`, `.noMemberReachable`, or ring errors.
    public static func join(
        addresses: [String], host: String, credentials: JobCredentials, options: ElasticOptions = ElasticOptions(),
        logger: Logger = Logger(label: "phalanx.elastic")
    ) throws -> ElasticMember {
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
        while !queue.isEmpty, ContinuousClock.now < deadline {
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
                if let leader = reply.address { queue.insert(MemberAddress(id: MemberNode.newcomerID, host: leader.host, port: leader.port), at: 0) }
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
            case .recover, .join:
                throw ElasticError.protocolViolation("unexpected \(reply.kind) in answer to a join")
            }
        }
        throw ElasticError.noMemberReachable(tried: tried, lastError: lastError)
    }
}
