import Foundation
@testable import PhalanxTCP
import Testing

@Suite struct HandshakeTests {
    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test func hmacMatchesRFC4231() {
        // Test cases 1, 2 and 6 of RFC 4231, through the handshake's HMAC (swift-crypto).
        #expect(Self.hex(MessageAuthentication.hmacSHA256(key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8)))
            == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        #expect(Self.hex(MessageAuthentication.hmacSHA256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8)))
            == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(Self.hex(MessageAuthentication.hmacSHA256(
            key: [UInt8](repeating: 0xaa, count: 131), message: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)))
            == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        #expect(MessageAuthentication.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        #expect(!MessageAuthentication.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        #expect(!MessageAuthentication.constantTimeEqual([1, 2], [1, 2, 3]))
    }

    /// The acceptor's side on one connection, as `HandshakeGate` runs it (its errors surface
    /// here instead of in the gate's log).
    static func accept(_ socket: Socket, credentials: JobCredentials, rank: Int, deadline: Deadline) throws -> Handshake.Peer {
        let nonceA = Handshake.nonce()
        try socket.writeAll(Handshake.hello(purpose: .ring, nonce: nonceA), deadline: deadline)
        let head = try socket.readExactly(Handshake.connectorHeadSize, deadline: deadline)
        let length = try Handshake.connectorMessageLength(head: head[...], from: socket.endpoint)
        let message = head + (try socket.readExactly(length - Handshake.connectorHeadSize, deadline: deadline))
        let (peer, reply, keys) = try Handshake.answer(message, nonceA: nonceA, credentials: credentials, purpose: .ring, rank: rank, from: socket.endpoint)
        try socket.writeAll(reply, deadline: deadline)
        socket.session = keys
        return peer
    }

    /// Runs both sides of a handshake over loopback; returns (acceptor result, connector result).
    static func handshake(acceptor: JobCredentials, connector: JobCredentials) throws -> (Result<Int, Error>, Result<Int, Error>) {
        let listener = try Socket.listen(host: "127.0.0.1", port: 0)
        let deadline = Deadline(after: .seconds(5))
        let box = ResultBox()
        let thread = Thread {
            box.set(Result {
                guard let socket = try listener.accept(deadline: deadline) else { throw SocketError("accept", endpoint: "", reason: "timed out") }
                return try Self.accept(socket, credentials: acceptor, rank: 7, deadline: deadline).rank
            })
        }
        thread.start()
        let client = Result { () -> Int in
            let socket = try Socket.connect(host: "127.0.0.1", port: listener.localPort, deadline: deadline)
            return try Handshake.connect(socket, credentials: connector, purpose: .ring, rank: 2, epoch: 3, deadline: deadline)
        }
        return (box.wait(), client)
    }

    @Test func bothSidesProveTheSecret() throws {
        let good = JobCredentials(jobID: "job", secret: Array("s3cret".utf8))
        let (server, client) = try Self.handshake(acceptor: good, connector: good)
        #expect(try server.get() == 2)
        #expect(try client.get() == 7)

        let (refused, _) = try Self.handshake(acceptor: good, connector: JobCredentials(jobID: "job", secret: Array("guess".utf8)))
        #expect(throws: HandshakeError.self) { try refused.get() }
        let (otherJob, _) = try Self.handshake(acceptor: good, connector: JobCredentials(jobID: "other", secret: Array("s3cret".utf8)))
        #expect { try otherJob.get() } throws: { error in
            if case let .wrongJob(_, jobID) = error as? HandshakeError { return jobID == "other" }
            return false
        }
        // A connector also refuses an acceptor that does not know the secret.
        let (_, fooled) = try Self.handshake(acceptor: JobCredentials(jobID: "job", secret: Array("fake".utf8)), connector: good)
        #expect(throws: (any Error).self) { try fooled.get() }
    }

    @Test func credentialsFromEnvironment() throws {
        let outside = ["10.20.30.40"]
        let plain = try JobCredentials.fromEnvironment(["PHALANX_JOB_ID": "j", "PHALANX_JOB_SECRET": "abc"], addresses: outside)
        #expect(plain == JobCredentials(jobID: "j", secret: Array("abc".utf8)))
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("secret-\(UUID().uuidString)")
        try "from-file\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        // Readable by others: refused, with the command that fixes it.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file.path)
        #expect { try JobCredentials.fromEnvironment(["PHALANX_JOB_SECRET_FILE": file.path], addresses: outside) } throws: { error in
            guard case let .exposedFile(_, mode, _, _) = error as? JobSecretError else { return false }
            return mode & 0o777 == 0o644 && "\(error)".contains("chmod 600")
        }
        for mode in [0o600, 0o400] {
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: file.path)
            #expect(try JobCredentials.fromEnvironment(["PHALANX_JOB_SECRET_FILE": file.path], addresses: outside).secret == Array("from-file".utf8))
        }
        // Owned by another user (only root can make one here).
        if geteuid() == 0 {
            try FileManager.default.setAttributes([.posixPermissions: 0o600, .ownerAccountID: 65_534], ofItemAtPath: file.path)
            #expect { try JobCredentials.fromEnvironment(["PHALANX_JOB_SECRET_FILE": file.path], addresses: outside) } throws: { error in
                guard case let .exposedFile(_, _, owner, _) = error as? JobSecretError else { return false }
                return owner == 65_534
            }
        }
        #expect { try JobCredentials.fromEnvironment(["PHALANX_JOB_SECRET_FILE": "/nonexistent/secret"], addresses: outside) } throws: { error in
            guard case .unreadableFile = error as? JobSecretError else { return false }
            return true
        }
        #expect(JobCredentials.randomSecret().count == 64)
    }

    @Test func noSecretIsAllowedOnLoopbackOnly() throws {
        let derived = try JobCredentials.fromEnvironment(["PHALANX_JOB_ID": "j"], addresses: ["127.0.0.1", "localhost", "127.0.1.1", "::1", "[::1]"])
        #expect(derived == JobCredentials(jobID: "j", secret: Array("j".utf8)))
        for outside in ["10.0.0.1", "192.168.1.7", "no-such-host.invalid", "0.0.0.0"] {
            #expect { try JobCredentials.fromEnvironment(["PHALANX_JOB_ID": "j"], addresses: ["127.0.0.1", outside]) } throws: { error in
                guard case let .missing(jobID, address) = error as? JobSecretError else { return false }
                return jobID == "j" && address == outside && "\(error)".contains("PHALANX_JOB_SECRET_FILE")
            }
        }
    }
}

final class ResultBox: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private var value: Result<Int, Error>?
    func set(_ result: Result<Int, Error>) { value = result; semaphore.signal() }
    func wait() -> Result<Int, Error> {
        semaphore.wait()
        return value ?? .failure(SocketError("wait", endpoint: "", reason: "no result"))
    }
}
