import Foundation
import PhalanxCollectives
import PhalanxTesting
import Testing
@testable import PhalanxTCP

/// Phalanx's c10d store client against PyTorch's own `TCPStore` server (both back-ends), and
/// the rendezvous torchrun's workers hold through it. Needs `python3 -c 'import torch'`
/// (`make test` installs the CPU wheel).
@Suite(.serialized) struct TorchStoreTests {
    /// A real torch TCPStore server in a Python process; its script also reads what the Swift
    /// side sets and sets what the Swift side reads, through torch's own client.
    final class TorchStoreServer {
        let process: WorkerProcesses
        let port: UInt16

        init(libuv: Bool) throws {
            let script = """
            import sys, datetime, torch.distributed as d
            s = d.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False, use_libuv=\(libuv ? "True" : "False"), timeout=datetime.timedelta(seconds=60))
            print(s.port, flush=True)
            c = d.TCPStore("127.0.0.1", s.port, is_master=False, timeout=datetime.timedelta(seconds=60))
            c.wait(["from_swift"])
            print("torch read", c.get("from_swift").decode(), flush=True)
            c.set("from_torch", "hello from torch")
            c.wait(["done"])
            print("counter", c.add("counter", 0), flush=True)
            """
            process = try WorkerProcesses(executable: "/usr/bin/env", arguments: ["python3", "-c", script], count: 1) { _ in [:] }
            let deadline = Date().addingTimeInterval(60)
            var port: UInt16?
            while port == nil, Date() < deadline, process.processes[0].isRunning {
                port = process.stdoutSoFar(0).split(separator: "\n").first.flatMap { UInt16($0) }
                if port == nil { Thread.sleep(forTimeInterval: 0.05) }
            }
            guard let port else {
                process.signal(0, SIGKILL)
                let output = process.wait(timeout: .seconds(10))
                throw SocketError("torch TCPStore", endpoint: "python3", reason: "did not start: \(output.first?.stderr.suffix(2000) ?? "")")
            }
            self.port = port
        }

        deinit { process.signal(0, SIGKILL) }
    }

    @Test(arguments: [true, false]) func speaksTorchsStoreProtocol(libuv: Bool) throws {
        let server = try TorchStoreServer(libuv: libuv)
        let deadline = Deadline(after: .seconds(30))
        let store = try TorchStoreClient(host: "127.0.0.1", port: server.port, deadline: deadline)
        #expect(try store.check(["from_torch"], deadline: deadline) == false)
        try store.set("from_swift", Array("hello from swift".utf8), deadline: deadline)
        try store.wait(["from_torch"], deadline: deadline)
        #expect(try store.check(["from_torch", "from_swift"], deadline: deadline))
        #expect(String(decoding: try store.get("from_torch", deadline: deadline), as: UTF8.self) == "hello from torch")
        #expect(try store.add("counter", 5, deadline: deadline) == 5)
        #expect(try store.add("counter", -2, deadline: deadline) == 3)
        // A wait that cannot end gives up at its deadline, naming the key, and closes the connection.
        let stuck = try TorchStoreClient(host: "127.0.0.1", port: server.port, deadline: deadline)
        let started = ContinuousClock.now
        #expect {
            try stuck.wait(["never"], deadline: Deadline(after: .milliseconds(300)))
        } throws: { ($0 as? SocketError)?.reason.contains("timed out waiting for never") == true }
        #expect(ContinuousClock.now - started < .seconds(5))
        try store.set("done", [1], deadline: deadline)
        let output = server.process.wait(timeout: .seconds(30))[0]
        #expect(output.status == 0, "\(output.stderr.suffix(2000))")
        #expect(output.stdout.contains("torch read hello from swift"))
        #expect(output.stdout.contains("counter 3"))
    }

    @Test func ranksMeetInTheStoreAndBuildAnAuthenticatedRing() throws {
        let server = try TorchStoreServer(libuv: true)
        let credentials = JobCredentials(jobID: "torch-job", secret: Array("store secret".utf8))
        let size = 3, port = server.port
        let results = RankThreads.run(count: size) { rank in Result<[Float], any Error> {
            let transport = try TCPTransport.connect(
                rank: rank, worldSize: size, server: PeerTable.Endpoint(host: "127.0.0.1", port: port),
                storePrefix: "phalanx/test/", credentials: credentials, timeout: .seconds(30))
            var values = [Float](repeating: Float(rank + 1), count: 1000)
            try values.withUnsafeMutableBufferPointer { try RingCommunicator(transport: transport).allReduce($0, op: .sum) }
            return values
        } }
        for result in results { #expect(try result.get().allSatisfy { $0 == 6 }) }
        // A rank that never comes is named at the deadline.
        #expect {
            _ = try TCPTransport.connect(
                rank: 0, worldSize: 2, server: PeerTable.Endpoint(host: "127.0.0.1", port: server.port),
                storePrefix: "phalanx/other/", credentials: credentials, timeout: .milliseconds(500))
        } throws: { ($0 as? SocketError)?.reason.contains("ranks [1] of 2 never registered") == true }
    }

    @Test func entriesOfAnEarlierRoundAreNotTakenForTheCurrentOnes() throws {
        // torchrun's store outlives a restart: the last round's entries (dead addresses, and
        // acknowledgements that agree with each other) are there when the new ranks come, one
        // of them late. The new ranks must build their ring from their own entries only.
        let server = try TorchStoreServer(libuv: true)
        let port = server.port
        let stale = try TorchStoreClient(host: "127.0.0.1", port: port, deadline: Deadline(after: .seconds(10)))
        let dead = try LoopbackPort.free()
        for rank in 0..<2 {
            try stale.set("phalanx/r/rank_\(rank)", Array("2 127.0.0.1 \(dead) 00000000000000\(rank)0".utf8), deadline: Deadline(after: .seconds(5)))
            try stale.set("phalanx/r/ack_\(rank)", Array("old".utf8), deadline: Deadline(after: .seconds(5)))
        }
        stale.close()
        let credentials = JobCredentials(jobID: "torch-job", secret: Array("store secret".utf8))
        let results = RankThreads.run(count: 2) { rank in Result<[Float], any Error> {
            if rank == 1 { Thread.sleep(forTimeInterval: 1) }
            let transport = try TCPTransport.connect(
                rank: rank, worldSize: 2, server: PeerTable.Endpoint(host: "127.0.0.1", port: port),
                storePrefix: "phalanx/r/", credentials: credentials, timeout: .seconds(20))
            var values = [Float](repeating: Float(rank + 1), count: 64)
            try values.withUnsafeMutableBufferPointer { try RingCommunicator(transport: transport).allReduce($0, op: .sum) }
            return values
        } }
        for result in results { #expect(try result.get().allSatisfy { $0 == 3 }) }
    }

    @Test func aPortThatIsNotAStoreIsAClearError() throws {
        // Phalanx's own rendezvous is not a c10d store: the client says so instead of hanging.
        let credentials = JobCredentials(jobID: "j", secret: Array("s".utf8))
        let rendezvous = try RendezvousServer(host: "127.0.0.1", port: 0, worldSize: 2, credentials: credentials, timeout: .seconds(5))
        rendezvous.start()
        let started = ContinuousClock.now
        #expect(throws: SocketError.self) {
            _ = try TorchStoreClient(host: "127.0.0.1", port: rendezvous.port, deadline: Deadline(after: .seconds(3)))
        }
        #expect(ContinuousClock.now - started < .seconds(4))
    }
}
