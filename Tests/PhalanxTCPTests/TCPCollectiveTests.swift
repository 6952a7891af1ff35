import Foundation
import PhalanxCollectives
@testable import PhalanxTCP
import Testing

/// The collectives over real processes on loopback. Each test bounds its wait and kills what
/// it started by PID.
@Suite(.serialized) struct TCPCollectiveTests {
    @Test(arguments: 1...6)
    func conformanceAcrossProcesses(worldSize: Int) throws {
        // A generous timeout: this checks results, and a loaded CI machine may stall a rank.
        let job = try TCPJob(worldSize: worldSize, arguments: ["conformance", "--timeout-ms", "20000"])
        let outputs = job.workers.wait(timeout: .seconds(240))
        for output in outputs {
            #expect(output.status == 0, "rank \(output.rank): \(output.stdout) \(output.stderr.suffix(500))")
            #expect(output.result["ok"] as? Bool == true)
            #expect((output.result["failures"] as? [String])?.isEmpty == true)
        }
    }

    @Test(arguments: ["mac", "aead"])
    func conformanceUnderWireProtection(_ mode: String) throws {
        // Every collective, with payloads from empty to several segments, in 3 processes.
        let job = try TCPJob(worldSize: 3, arguments: ["conformance", "--timeout-ms", "20000"], environment: { _ in ["PHALANX_WIRE_PROTECTION": mode] })
        let outputs = job.workers.wait(timeout: .seconds(240))
        for output in outputs {
            #expect(output.status == 0, "rank \(output.rank): \(output.stdout) \(output.stderr.suffix(500))")
            #expect(output.result["ok"] as? Bool == true)
            #expect((output.result["failures"] as? [String])?.isEmpty == true)
        }
    }

    @Test func membersWithDifferentWireProtectionsAreToldWhy() throws {
        let job = try TCPJob(worldSize: 2, arguments: ["checksum", "--timeout-ms", "5000"], environment: { rank in
            ["PHALANX_WIRE_PROTECTION": rank == 0 ? "mac" : "none"]
        })
        let outputs = job.workers.wait(timeout: .seconds(60))
        #expect(outputs.allSatisfy { $0.status != 0 })
        let said = outputs.map(\.stderr).joined()
        #expect(said.contains("wire protection mac, this rank expects none") || said.contains("wire protection none, this rank expects mac"), "\(said.suffix(1500))")
    }

    @Test func hundredRandomAllReducesAreBitIdenticalOnEveryRank() throws {
        let job = try TCPJob(worldSize: 3, arguments: ["checksum", "--timeout-ms", "20000"])
        let outputs = job.workers.wait(timeout: .seconds(120))
        let sums = outputs.map { $0.result["checksum"] as? String }
        #expect(sums.count == 3 && sums.allSatisfy { $0 != nil && $0 == sums[0] }, "\(sums)")
    }

    @Test func mismatchedCountsFailOnEveryRankWithoutHanging() throws {
        let started = ContinuousClock.now
        let job = try TCPJob(worldSize: 4, arguments: ["mismatch", "--timeout-ms", "10000"])
        let outputs = job.workers.wait(timeout: .seconds(60))
        // Detection comes from the frame headers, not from the 10 s timeout.
        #expect(ContinuousClock.now - started < .seconds(8))
        for output in outputs {
            #expect(output.status != 0)
            let code = output.result["code"] as? String
            #expect(code == "sizeMismatch" || code == "peerAborted", "rank \(output.rank): \(output.stdout)")
        }
        #expect(outputs.contains { $0.result["code"] as? String == "sizeMismatch" })
    }

    @Test(arguments: [0, 2, 3])
    func killedPeerIsNamedByEverySurvivorWithinTwoSeconds(victim: Int) throws {
        let job = try TCPJob(worldSize: 4, arguments: ["loop", "--elements", "262144"])
        defer { _ = job.workers.wait(timeout: .seconds(1)) }
        #expect(job.workers.waitForMarker("\"ready\"", ranks: Array(0..<4), timeout: .seconds(60)))
        usleep(300_000)  // mid-run
        job.workers.signal(victim, SIGKILL)
        let killedAt = ContinuousClock.now
        let outputs = job.workers.wait(timeout: .seconds(10))
        let elapsed = ContinuousClock.now - killedAt
        #expect(elapsed < .seconds(2), "survivors took \(elapsed)")
        for output in outputs where output.rank != victim {
            #expect(output.status != 0)
            #expect(output.result["peer"] as? Int == victim, "rank \(output.rank): \(output.stdout)")
            let code = output.result["code"] as? String
            #expect(code == "connectionLost" || code == "peerAborted", "rank \(output.rank): \(output.stdout)")
        }
    }

    @Test func stoppedPeerGivesADeadlineError() throws {
        let job = try TCPJob(worldSize: 3, arguments: ["loop", "--elements", "65536", "--timeout-ms", "1000"])
        #expect(job.workers.waitForMarker("\"ready\"", ranks: Array(0..<3), timeout: .seconds(60)))
        usleep(200_000)
        job.workers.signal(1, SIGSTOP)
        let stoppedAt = ContinuousClock.now
        #expect(job.workers.waitForMarker("\"ok\":false", ranks: [0, 2], timeout: .seconds(10)))
        let elapsed = ContinuousClock.now - stoppedAt
        job.workers.signal(1, SIGKILL)
        let outputs = job.workers.wait(timeout: .seconds(10))
        #expect(elapsed < .seconds(4), "deadline took \(elapsed)")
        let codes = [outputs[0], outputs[2]].map { $0.result["code"] as? String }
        #expect(codes.contains("timeout"), "\(outputs.map(\.stdout))")
        #expect(codes.allSatisfy { $0 == "timeout" || $0 == "peerAborted" }, "\(codes)")
    }

    @Test func strangersAreRefusedAndLoggedAndTheJobGoesOn() throws {
        let job = try TCPJob(worldSize: 2, arguments: ["conformance", "--large-count", "1000", "--timeout-ms", "20000"], beforeWorkers: { port in
            // A client with the wrong secret, then one that sends garbage, before the real ranks.
            let wrong = JobCredentials(jobID: "test-job", secret: Array("not the secret".utf8))
            let deadline = Deadline(after: .seconds(10))
            let intruder = try Socket.connect(host: "127.0.0.1", port: port, deadline: deadline)
            #expect(throws: (any Error).self) {
                _ = try Handshake.connect(intruder, credentials: wrong, purpose: .rendezvous, rank: 0, epoch: 0, deadline: deadline)
                _ = try intruder.readExactly(4, deadline: deadline)
            }
            let garbage = try Socket.connect(host: "127.0.0.1", port: port, deadline: deadline)
            _ = try garbage.readExactly(38, deadline: deadline)
            try garbage.writeAll(Array(repeating: 0xAB, count: 200), deadline: deadline)
            #expect(throws: (any Error).self) { _ = try garbage.readExactly(1, deadline: deadline) }
        })
        let outputs = job.workers.wait(timeout: .seconds(120))
        for output in outputs { #expect(output.result["ok"] as? Bool == true, "\(output.stdout) \(output.stderr.suffix(300))") }
        #expect(job.server.refusedConnections == 2)
        if case let .failure(error) = job.server.wait() { Issue.record("rendezvous failed: \(error)") }
    }
}
