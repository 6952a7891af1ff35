import Foundation
@_spi(Testing) @testable import PhalanxTCP
import PhalanxTesting
import Testing

/// A man in the middle between rank 0 and rank 1 of a real 2-process ring changes or replays
/// what rank 0 sends. Without protection the job ends "successfully" with wrong sums; under
/// `mac` and `aead` every rank fails with an error that names the forged or replayed segment.
@Suite(.serialized) struct WireTamperingTests {
    /// The relay, set on the rendezvous' thread and stopped by the test's.
    final class RelayBox: @unchecked Sendable {
        private let lock = NSLock()
        // Guarded by `lock`.
        private var value: TamperingRelay?
        var relay: TamperingRelay? {
            get { lock.lock(); defer { lock.unlock() }; return value }
            set { lock.lock(); value = newValue; lock.unlock() }
        }
    }

    /// The handshake's answer from rank 0 ("PHXC", job id "test-job", rank, epoch, nonce, MAC):
    /// data frames follow it.
    static let answerBytes = 6 + "test-job".utf8.count + 76

    /// Runs `checksum` (100 random all-reduces) in 2 processes with rank 0's connection to
    /// rank 1 through a relay that applies `tampering`.
    static func tampered(_ mode: String, _ tampering: TamperingRelay.Tampering) throws -> [WorkerProcesses.Output] {
        let box = RelayBox()
        let credentials = JobCredentials(jobID: "test-job", secret: Array("tampering".utf8))
        let server = try RendezvousServer(host: "127.0.0.1", port: 0, worldSize: 2, credentials: credentials, timeout: .seconds(60))
        server.routeThroughPath { table in
            var rewritten = table
            guard let relay = try? TamperingRelay(to: table.endpoints[1].port, tampering: tampering) else { return table }
            box.relay = relay
            rewritten.endpoints[1].port = relay.port
            return rewritten
        }
        server.start()
        let port = server.port
        let workers = try WorkerProcesses(executable: "phalanx-check", arguments: ["checksum", "--timeout-ms", "5000"], count: 2) { rank in
            [
                "PHALANX_RANK": "\(rank)", "PHALANX_WORLD_SIZE": "2", "PHALANX_MASTER_ADDR": "127.0.0.1", "PHALANX_MASTER_PORT": "\(port)",
                "PHALANX_RENDEZVOUS_EXTERNAL": "1", "PHALANX_JOB_ID": "test-job", "PHALANX_JOB_SECRET": "tampering", "PHALANX_WIRE_PROTECTION": mode,
            ]
        }
        let outputs = workers.wait(timeout: .seconds(60))
        box.relay?.stop()
        return outputs
    }

    @Test(arguments: ["none", "mac", "aead"])
    func aFlippedBitOnTheWay(_ mode: String) throws {
        let clean = try Self.tampered(mode, .none)
        let expected = try #require(clean.first?.result["checksum"] as? String, "\(clean.map(\.stdout))")
        #expect(clean.allSatisfy { $0.result["checksum"] as? String == expected })
        // One bit of the first data frame's payload, past its 48-byte header.
        let outputs = try Self.tampered(mode, .flipBit(offset: Self.answerBytes + 48 + 101))
        if mode == "none" {
            // The control: without protection the change goes through unnoticed.
            #expect(outputs.allSatisfy { $0.status == 0 && $0.result["ok"] as? Bool == true }, "\(outputs.map(\.stdout))")
            #expect(outputs.contains { $0.result["checksum"] as? String != expected }, "the flipped bit changed nothing: \(outputs.map(\.stdout))")
        } else {
            for output in outputs {
                #expect(output.result["ok"] as? Bool == false && output.result["checksum"] == nil, "\(output.stdout)")
            }
            let errors = outputs.compactMap { $0.result["error"] as? String }
            #expect(errors.contains { $0.contains("authentication tag does not verify") && $0.contains("wire protection \(mode)") }, "\(errors)")
        }
    }

    @Test(arguments: ["mac", "aead"])
    func aFrameSentAgainOnTheWay(_ mode: String) throws {
        // The first data frame, inserted again right after itself: its tags are valid and its
        // numbers used. Whichever check meets it first (the header expected next, or the
        // segment numbers when the header happens to match) refuses it.
        let protection = try #require(WireProtection(rawValue: mode))
        let outputs = try Self.tampered(mode, .repeatFrame(at: Self.answerBytes, bodyBytes: { protection.bodyBytes(payload: $0) }))
        for output in outputs { #expect(output.result["ok"] as? Bool == false && output.result["checksum"] == nil, "\(output.stdout)") }
        let errors = outputs.compactMap { $0.result["error"] as? String }
        #expect(errors.contains { $0.contains("came before (a replay or a reordering)") || $0.contains("sizeMismatch") || $0.contains("stale or foreign frame") },
                "\(errors)")
    }
}
