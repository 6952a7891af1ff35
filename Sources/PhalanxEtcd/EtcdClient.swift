import AsyncHTTPClient
import Foundation
import NIOCore

/// A small synchronous client of etcd's v3 API through its JSON gateway (`POST /v3/...`),
/// over AsyncHTTPClient: reads, puts, compare-and-swap transactions and leases, which is all
/// the `etcd` backend of `phalanx-run --nnodes` needs. (Not Foundation's URLSession: on Linux
/// it stops the process with "Transfer completed, but there's no response" when a connection
/// ends without an answer, as a killed etcd member's may.)
///
/// It knows every member of the etcd cluster: a request that gets no answer from one (killed,
/// frozen, cut off, or without a quorum) goes to the next, and the one that answered is asked
/// first next time. Every request has a deadline; etcd's own answers are linearizable.
public final class EtcdClient: @unchecked Sendable {
    /// The members' base URLs.
    public let endpoints: [URL]
    private let http = HTTPClient.shared
    private let timeout: Duration
    // Guarded by `lock`.
    private let lock = NSLock()
    private var preferred = 0

    /// A key and its value as etcd holds them.
    public struct Entry: Sendable, Equatable {
        /// The key.
        public var key: String
        /// The value.
        public var value: [UInt8]
        /// The revision that created the key.
        public var createRevision: Int64
        /// The revision that last changed it.
        public var modRevision: Int64
    }

    /// A condition of a transaction.
    public enum Condition: Sendable, Equatable {
        /// The key was last changed at this revision (0: the key does not exist).
        case modRevision(String, Int64)
        /// The key was created at this revision (0: the key does not exist).
        case createRevision(String, Int64)
    }

    /// A client of the etcd cluster whose members answer at `endpoints` (`host:port` or
    /// `http://host:port`), each request within `timeout` (all members tried together).
    /// - Throws: `EtcdError.invalidEndpoint`.
    public init(endpoints: [String], timeout: Duration = .seconds(2)) throws {
        self.endpoints = try endpoints.map { text in
            let full = text.contains("://") ? text : "http://\(text)"
            guard let url = URL(string: full), url.host != nil, url.port != nil else { throw EtcdError.invalidEndpoint(text) }
            return url
        }
        guard !self.endpoints.isEmpty else { throw EtcdError.invalidEndpoint("") }
        self.timeout = timeout
    }

    /// The entry at `key`, if any.
    public func get(_ key: String) throws -> Entry? {
        let answer: EtcdWire.RangeResponse = try call("kv/range", EtcdWire.RangeRequest(key: EtcdWire.base64(key)))
        return try answer.kvs?.first.map(entry)
    }

    /// Every entry whose key starts with `prefix`.
    public func list(prefix: String) throws -> [Entry] {
        let answer: EtcdWire.RangeResponse = try call("kv/range", EtcdWire.RangeRequest(key: EtcdWire.base64(prefix), range_end: EtcdWire.prefixEnd(prefix)))
        return try (answer.kvs ?? []).map(entry)
    }

    /// Sets `key` to `value`, attached to `lease` (it goes with the lease) if given.
    public func put(_ key: String, _ value: [UInt8], lease: Int64? = nil) throws {
        let _: EtcdWire.Empty = try call("kv/put", EtcdWire.PutRequest(key: EtcdWire.base64(key), value: EtcdWire.base64(value), lease: lease.map { "\($0)" }))
    }

    /// Sets `key` to `value` (with `lease`, if given) only if every condition holds, in one
    /// transaction. Returns whether it did, and the store's revision after it (the key's new
    /// revision when it did).
    public func put(_ key: String, _ value: [UInt8], lease: Int64? = nil, if conditions: [Condition]) throws -> (done: Bool, revision: Int64) {
        let compare = conditions.map { condition -> EtcdWire.Compare in
            switch condition {
            case let .modRevision(key, revision): EtcdWire.Compare(key: EtcdWire.base64(key), target: "MOD", mod_revision: "\(revision)")
            case let .createRevision(key, revision): EtcdWire.Compare(key: EtcdWire.base64(key), target: "CREATE", create_revision: "\(revision)")
            }
        }
        let put = EtcdWire.PutRequest(key: EtcdWire.base64(key), value: EtcdWire.base64(value), lease: lease.map { "\($0)" })
        let answer: EtcdWire.TxnResponse = try call("kv/txn", EtcdWire.TxnRequest(compare: compare, success: [EtcdWire.RequestOp(request_put: put)], failure: []))
        return (answer.succeeded ?? false, answer.header?.revision.flatMap { Int64($0) } ?? 0)
    }

    /// Grants a lease of `ttl` seconds and returns its id.
    public func grantLease(ttl: Int) throws -> Int64 {
        let answer: EtcdWire.LeaseGrantResponse = try call("lease/grant", EtcdWire.LeaseGrantRequest(TTL: "\(ttl)"))
        guard let text = answer.ID, let id = Int64(text), id != 0 else {
            throw EtcdError.badAnswer(endpoint: endpoints.map(\.absoluteString).joined(separator: ","), detail: "no lease granted: \(answer.error ?? "no id")")
        }
        return id
    }

    /// Renews `lease`; returns false when it had already expired (whatever was attached to it is gone).
    public func keepAlive(_ lease: Int64) throws -> Bool {
        let answer: EtcdWire.KeepAliveResponse = try call("lease/keepalive", EtcdWire.LeaseRequest(ID: "\(lease)"))
        return (answer.result?.TTL.flatMap { Int64($0) } ?? 0) > 0
    }

    /// Ends `lease` at once, deleting every key attached to it.
    public func revoke(_ lease: Int64) throws {
        let _: EtcdWire.Empty = try call("lease/revoke", EtcdWire.LeaseRequest(ID: "\(lease)"))
    }

    private func entry(_ kv: EtcdWire.KeyValue) throws -> Entry {
        guard let key = Data(base64Encoded: kv.key).flatMap({ String(data: $0, encoding: .utf8) }),
              let value = Data(base64Encoded: kv.value ?? "") else {
            throw EtcdError.badAnswer(endpoint: endpoints.map(\.absoluteString).joined(separator: ","), detail: "a key or value that is not base64")
        }
        return Entry(key: key, value: Array(value), createRevision: kv.create_revision.flatMap { Int64($0) } ?? 0,
                     modRevision: kv.mod_revision.flatMap { Int64($0) } ?? 0)
    }

    /// Posts `request` to `/v3/<path>`, trying the members in turn (starting with the one
    /// that answered last, each given at most half of the time left but the last) until one
    /// answers or the deadline passes. A member that does not answer is asked last next time;
    /// an HTTP 4xx from etcd itself is not retried elsewhere. When a whole round ended with a
    /// member answering 5xx (no leader yet: an election after the leader froze or died takes
    /// about a second), the members are asked again after a short pause, within the deadline.
    private func call<Request: Encodable, Response: Decodable>(_ path: String, _ request: Request) throws -> Response {
        let body = try JSONEncoder().encode(request)
        let deadline = ContinuousClock.now + timeout
        lock.lock()
        let first = preferred
        lock.unlock()
        var lastError = "no member asked within \(timeout)"
        var attempt = 0, electionSeen = false
        while ContinuousClock.now < deadline {
            let index = (first + attempt) % endpoints.count
            let endpoint = endpoints[index].absoluteString
            // A member that does not answer (frozen, cut off) may take half of what is left, so
            // that the next one is still asked in time.
            let left = deadline - ContinuousClock.now
            let share = attempt % endpoints.count == endpoints.count - 1 ? left : left / 2
            switch post(endpoints[index].appendingPathComponent("v3/\(path)"), body, within: share) {
            case let .success(data):
                lock.lock()
                preferred = index
                lock.unlock()
                do { return try JSONDecoder().decode(Response.self, from: data) } catch {
                    throw EtcdError.badAnswer(endpoint: endpoint, detail: "\(error): \(String(decoding: data.prefix(200), as: UTF8.self))")
                }
            case let .refused(status, text):
                throw EtcdError.badAnswer(endpoint: endpoint, detail: "HTTP \(status): \(text)")
            case let .failure(reason, unavailable):
                lastError = "\(endpoint): \(reason)"
                electionSeen = electionSeen || unavailable
                lock.lock()
                if preferred == index { preferred = (index + 1) % endpoints.count }
                lock.unlock()
            }
            attempt += 1
            guard attempt % endpoints.count == 0 else { continue }
            // A round without an answer: ask again only while some member says it has no leader.
            guard electionSeen else { break }
            electionSeen = false
            let pause = min(Duration.milliseconds(100), deadline - ContinuousClock.now)
            if pause > .zero { Thread.sleep(forTimeInterval: Double(pause / .microseconds(1)) / 1e6) }
        }
        throw EtcdError.unreachable(endpoints: endpoints.map(\.absoluteString), lastError: lastError)
    }

    private enum Outcome: Sendable {
        case success(Data)
        /// etcd answered with an error of its own (4xx): asking another member would not help.
        case refused(UInt, String)
        /// No answer (refused connection, timeout), or a 5xx (`unavailable`: a member without a
        /// leader or a quorum, as during an election).
        case failure(String, unavailable: Bool)
    }

    private func post(_ url: URL, _ body: Data, within budget: Duration) -> Outcome {
        do {
            var request = try HTTPClient.Request(url: url, method: .POST, body: .data(body))
            request.headers.add(name: "Content-Type", value: "application/json")
            let deadline = NIODeadline.now() + .nanoseconds(Int64(budget / .nanoseconds(1)))
            let response = try http.execute(request: request, deadline: deadline).wait()
            let data = response.body.map { Data($0.readableBytesView) } ?? Data()
            let text = String(decoding: data.prefix(200), as: UTF8.self)
            if (400..<500).contains(response.status.code) { return .refused(response.status.code, text) }
            guard response.status == .ok else { return .failure("HTTP \(response.status.code): \(text)", unavailable: response.status.code >= 500) }
            return .success(data)
        } catch {
            return .failure("\(error)", unavailable: false)
        }
    }
}
