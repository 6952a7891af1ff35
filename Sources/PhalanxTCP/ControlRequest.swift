import Crypto
import Foundation

/// One control message that reached a member's listener, with the connection to answer on.
///
/// Control messages are opaque bytes to this module (the elastic layer encodes them), framed as
/// `"PHXM" length(4) payload` on a connection that passed the job's handshake.
public final class ControlRequest: @unchecked Sendable {
    /// The id the sender gave in its handshake (`MemberNode.newcomerID` for a joiner).
    public let senderID: Int
    /// The epoch the sender gave in its handshake.
    public let senderEpoch: UInt64
    /// The message.
    public let payload: [UInt8]
    /// The sender's address, for logs.
    public let endpoint: String
    private let lock = NSLock()
    private var socket: Socket?

    init(senderID: Int, senderEpoch: UInt64, payload: [UInt8], socket: Socket) {
        self.senderID = senderID
        self.senderEpoch = senderEpoch
        self.payload = payload
        self.endpoint = socket.endpoint
        self.socket = socket
    }

    /// Sends `payload` back (best effort, within `timeout`) and closes the connection; later
    /// calls do nothing. Returns false when the sender could not be reached.
    @discardableResult
    public func reply(_ payload: [UInt8], timeout: Duration = .seconds(1)) -> Bool {
        lock.lock()
        let socket = self.socket
        self.socket = nil
        lock.unlock()
        guard let socket else { return false }
        defer { socket.close() }
        do {
            try ControlFraming.write(payload, to: socket, deadline: Deadline(after: timeout))
            return true
        } catch { return false }
    }

    /// Closes the connection without an answer (the sender sees it closed).
    public func close() {
        lock.lock()
        let socket = self.socket
        self.socket = nil
        lock.unlock()
        socket?.close()
    }

    deinit { socket?.close() }
}

/// Length-prefixed control messages, each numbered and authenticated with the connection's
/// session keys:
///
///     "PHXM" length(4) number(8) payload tag(32)
///     tag = HMAC-SHA256(sending key, "control" | number | length | payload)
///
/// A message whose tag does not verify (changed or injected on the way) or whose number is not
/// above the last one received on the connection (a replay or a reordering) is refused with
/// `WireIntegrityError`.
enum ControlFraming {
    static let magic = Array("PHXM".utf8)
    static let maximumBytes = 16 << 20

    static func tag(_ key: SymmetricKey, number: UInt64, payload: [UInt8]) -> [UInt8] {
        var mac = HMAC<SHA256>(key: key)
        mac.update(data: Array("control".utf8) + Wire.bytes(number) + Wire.bytes(UInt32(payload.count)))
        mac.update(data: payload)
        return Array(mac.finalize())
    }

    static func write(_ payload: [UInt8], to socket: Socket, deadline: Deadline) throws {
        guard let keys = socket.session else { throw WireIntegrityError.unauthenticated(from: socket.endpoint) }
        let number = keys.nextSent()
        try socket.writeAll(magic + Wire.bytes(UInt32(payload.count)) + Wire.bytes(number) + payload + tag(keys.sending, number: number, payload: payload),
                            deadline: deadline)
    }

    static func read(from socket: Socket, deadline: Deadline) throws -> [UInt8] {
        guard let keys = socket.session else { throw WireIntegrityError.unauthenticated(from: socket.endpoint) }
        let head = try socket.readExactly(16, deadline: deadline)
        guard Array(head[0..<4]) == magic else { throw HandshakeError.garbage(from: socket.endpoint) }
        let length = Int(Wire.uint32(head, at: 4))
        guard length <= maximumBytes else { throw HandshakeError.garbage(from: socket.endpoint) }
        let number = Wire.uint64(head, at: 8)
        let body = try socket.readExactly(length + 32, deadline: deadline)
        let payload = Array(body[0..<length])
        guard MessageAuthentication.constantTimeEqual(tag(keys.receiving, number: number, payload: payload), Array(body[length...])) else {
            throw WireIntegrityError.forged(what: "control message", from: socket.endpoint)
        }
        guard keys.accept(received: number) else { throw WireIntegrityError.replayed(what: "control message", from: socket.endpoint, number: number) }
        return payload
    }
}
