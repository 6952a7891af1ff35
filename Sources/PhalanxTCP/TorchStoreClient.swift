#if canImport(Glibc)
import Glibc
#endif

/// A client of PyTorch's c10d `TCPStore`, the key-value store torchrun's agent hosts at
/// `MASTER_ADDR:MASTER_PORT` for its workers: enough of the protocol for a rendezvous (set, get,
/// add, check, wait). Both of torch's server back-ends (libuv and the classic one) speak it.
///
/// Every message is a query-type byte followed by its arguments in the host's byte order (the
/// store runs on the same kind of machine as its clients): integers as 8 bytes, strings and
/// byte vectors as an 8-byte length and the bytes. A connection opens with `validate` (the
/// query byte 0 and a 4-byte magic number) and a `ping` (byte 13 and a 4-byte nonce the server
/// echoes). See docs/launching.md.
///
/// The store is not authenticated: anyone who reaches it may write any key. Phalanx only reads
/// its ranks' addresses from it; the ring's connections then prove the job secret
/// (`Handshake`), so with a job secret a forged address fails the start, never joins the job.
/// One thread uses a client at a time (its requests and answers share one connection).
final class TorchStoreClient {
    /// The query-type byte of each request this client sends (torch's `QueryType` values).
    enum Query: UInt8 {
        case validate = 0, set = 1, get = 3, add = 4, check = 5, wait = 6, ping = 13
    }

    /// torch's `validationMagicNumber`.
    static let validationMagic: UInt32 = 0x3C85_F7CE
    /// The store's "host:port", for messages.
    let endpoint: String
    private let socket: Socket

    /// Connects (retrying a refused connection until `deadline`: the agent may not listen yet)
    /// and validates the connection.
    /// - Throws: `SocketError` naming the store when it cannot be reached, does not answer the
    ///   ping before `deadline`, or answers with the wrong nonce (not a c10d store).
    init(host: String, port: UInt16, deadline: Deadline) throws {
        socket = try Socket.connect(host: host, port: port, deadline: deadline)
        endpoint = socket.endpoint
        socket.setNoDelay()
        try socket.writeAll([Query.validate.rawValue] + Self.bytes(UInt32(Self.validationMagic)), deadline: deadline)
        let nonce = UInt32(truncatingIfNeeded: Int(getpid()) &* 2_654_435_761)
        try socket.writeAll([Query.ping.rawValue] + Self.bytes(nonce), deadline: deadline)
        let echo = try read(4, "ping", deadline)
        guard Self.uint32(echo) == nonce else {
            throw SocketError("c10d store", endpoint: endpoint, reason: "answered the ping with \(Self.uint32(echo)), not \(nonce): not a torch TCPStore")
        }
    }

    /// The local address of the connection: the interface that reaches the store.
    var localHost: String { socket.localHost }

    /// Closes the connection.
    func close() { socket.close() }

    /// Sets `key` to `value`.
    /// - Throws: `SocketError` when the store is gone or slow past `deadline`.
    func set(_ key: String, _ value: [UInt8], deadline: Deadline) throws {
        try socket.writeAll([Query.set.rawValue] + Self.key(key) + Self.string(value), deadline: deadline)
    }

    /// Adds `amount` to the integer at `key` (0 when missing) and returns the sum.
    /// - Throws: `SocketError`.
    func add(_ key: String, _ amount: Int64, deadline: Deadline) throws -> Int64 {
        try socket.writeAll([Query.add.rawValue] + Self.key(key) + Self.bytes(UInt64(bitPattern: amount)), deadline: deadline)
        return Int64(bitPattern: Self.uint64(try read(8, "add \(key)", deadline)))
    }

    /// Whether all `keys` exist now (never waits).
    /// - Throws: `SocketError`, or one naming the answer when it is neither ready nor not ready.
    func check(_ keys: [String], deadline: Deadline) throws -> Bool {
        try socket.writeAll([Query.check.rawValue] + Self.keys(keys), deadline: deadline)
        let answer = try read(1, "check", deadline)[0]
        guard answer <= 1 else { throw SocketError("c10d store", endpoint: endpoint, reason: "check answered \(answer)") }
        return answer == 0
    }

    /// Waits until all `keys` exist.
    /// - Throws: `SocketError` ("timed out") when `deadline` passes first (the connection is
    ///   then closed: the server's pending wait ends with it), or when the store is gone.
    func wait(_ keys: [String], deadline: Deadline) throws {
        try socket.writeAll([Query.wait.rawValue] + Self.keys(keys), deadline: deadline)
        do {
            let answer = try read(1, "wait", deadline)[0]
            guard answer == 0 else { throw SocketError("c10d store", endpoint: endpoint, reason: "wait answered \(answer)") }
        } catch let error as SocketError where error.isTimeout {
            socket.close()
            throw SocketError("c10d store", endpoint: endpoint, reason: "timed out waiting for \(keys.count == 1 ? keys[0] : "\(keys.count) keys")")
        }
    }

    /// The value at `key`, which must exist (`wait` or `check` first).
    /// - Throws: `SocketError` when the store is gone or slow past `deadline`.
    func get(_ key: String, deadline: Deadline) throws -> [UInt8] {
        try socket.writeAll([Query.get.rawValue] + Self.key(key), deadline: deadline)
        let length = Self.uint64(try read(8, "get \(key)", deadline))
        guard length <= 1 << 24 else {
            throw SocketError("c10d store", endpoint: endpoint, reason: "value of \(key) is \(length) bytes, more than a rendezvous needs")
        }
        return try read(Int(length), "get \(key)", deadline)
    }

    private func read(_ count: Int, _ what: String, _ deadline: Deadline) throws -> [UInt8] {
        do {
            return try socket.readExactly(count, deadline: deadline)
        } catch let error as SocketError {
            throw SocketError("c10d store \(what)", endpoint: endpoint, errno: error.errno, reason: error.reason)
        }
    }

    // MARK: Encoding (host byte order, as torch's sendValue memcpy's it)

    static func bytes(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value) { Array($0) } }
    static func bytes(_ value: UInt64) -> [UInt8] { withUnsafeBytes(of: value) { Array($0) } }
    static func string(_ text: String) -> [UInt8] { string(Array(text.utf8)) }
    /// A key as torch's `TCPStore` client sends it: under "/" (its `keyPrefix_`), so that keys
    /// here and in Python's `store.get(key)` are the same.
    static func key(_ name: String) -> [UInt8] { string("/" + name) }
    static func string(_ bytes: [UInt8]) -> [UInt8] { Self.bytes(UInt64(bytes.count)) + bytes }
    static func keys(_ keys: [String]) -> [UInt8] { keys.reduce(bytes(UInt64(keys.count))) { $0 + key($1) } }
    static func uint32(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) } }
    static func uint64(_ bytes: [UInt8]) -> UInt64 { bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } }
}
