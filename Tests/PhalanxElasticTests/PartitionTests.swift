import Foundation
import PhalanxTesting
import Testing

/// An even network partition of real processes on network-namespace hosts: at most one side
/// trains (the witness breaks the tie), the other stops and says why, and after healing the
/// cut-off members rejoin and one job finishes with the weights of a fault-free run.
@Suite(.serialized, .enabled(if: getuid() == 0, "network namespaces need root"))
struct PartitionTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let steps = 1_500

    @Test func anEvenPartitionLeavesOneJobThatFinishesAfterHealing() throws {
        let hosts = try NamespaceHosts(repository: Self.repository, count: 4)
        defer { hosts.remove() }
        // 10 ms per step: the job runs for 15 s or more, enough to cut, heal and rejoin.
        let job = try ElasticJob(worldSize: 4, steps: Self.steps, extra: ["--step-delay-ms", "10"], hosts: hosts)
        defer { for rank in 0..<4 { job.workers.signal(rank, SIGKILL) } }
        let started = job.workers.waitForMarker("\"event\":\"started\"", ranks: [0, 1, 2, 3], timeout: .seconds(30))
        try #require(started, "the members did not start: \(job.workers.stdoutSoFar(0).suffix(500))")
        usleep(1_500_000)
        try hosts.cut([0, 1], [2, 3])
        // Longer than detection and several agreement rounds, shorter than the recovery bound.
        usleep(5_000_000)
        try hosts.heal()
        let outputs = job.workers.wait(timeout: .seconds(150))

        for output in outputs {
            #expect(output.status == 0, "member \(output.rank): \(output.stderr.suffix(1500))")
        }
        // One membership per epoch across every process: both halves never decided an epoch each.
        var epochs: [Int: [Int]] = [:]
        for output in outputs {
            for change in output.events("change") {
                let epoch = change["epoch"] as? Int ?? -1, members = change["members"] as? [Int] ?? []
                if let known = epochs[epoch] {
                    #expect(known == members, "epoch \(epoch) has two memberships: \(known) and \(members)")
                } else {
                    epochs[epoch] = members
                }
            }
        }
        // One side went on without the other; the side left out said why it stopped: its
        // rounds found no quorum, or (through the witness, which had accepted the other side's
        // proposal) it learned that the job went on without it.
        let changes = outputs.flatMap { $0.events("change") }
        let cutOff = changes.compactMap { $0["lost"] as? [Int] }.first { Set($0) == [0, 1] || Set($0) == [2, 3] }
        let lost = try #require(cutOff, "no membership left one half out: \(epochs)")
        for rank in lost {
            let log = outputs[rank].stderr
            #expect(log.contains("no quorum") || log.contains("was evicted (epoch"), "member \(rank) did not say why it stopped: \(log.suffix(1500))")
            #expect(log.contains("asking to join again"), "member \(rank) did not ask to be admitted again: \(log.suffix(1500))")
        }
        // After healing every process finished the job, in one membership of four.
        let done = outputs.compactMap(\.done)
        #expect(done.count == 4, "\(outputs.map { $0.stdout.suffix(300) })")
        #expect(done.allSatisfy { $0["steps"] as? Int == Self.steps && $0["world_size"] as? Int == 4 }, "\(done)")
        let hashes = Set(done.compactMap { $0["params_hash"] as? String })
        #expect(hashes.count == 1, "\(hashes)")

        // The same job without the partition, on loopback.
        let intact = try ElasticJob(worldSize: 4, steps: Self.steps)
        let intactOutputs = intact.workers.wait(timeout: .seconds(120))
        #expect(intactOutputs.allSatisfy { $0.status == 0 })
        let files = try FileManager.default.contentsOfDirectory(atPath: job.directory).filter { $0.hasPrefix("weights-") }
        #expect(files.count == 4, "\(files)")
        for file in files {
            let difference = ElasticJob.relativeDifference(try ElasticJob.weights(at: "\(job.directory)/\(file)"), try intact.weights(member: 0))
            #expect(difference < 1e-5, "\(file): relative difference \(difference) from the run without a partition")
        }
    }
}
