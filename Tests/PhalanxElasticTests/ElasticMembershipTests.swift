import Foundation
import PhalanxTesting
import Testing

/// Hung members, joiners, strangers, and falling below the minimum.
@Suite(.serialized) struct ElasticMembershipTests {
    /// Member 2, and member 0 (the one that would coordinate).
    @Test(arguments: [2, 0])
    func aStoppedMemberIsEvictedAndRejoinsCleanlyWhenItWakes(victim: Int) throws {
        // 20 ms of "compute" per step: the stop lands while others are in a step or waiting.
        let job = try ElasticJob(worldSize: 4, steps: 200, extra: ["--step-delay-ms", "20"])
        #expect(job.workers.waitForMarker("\"event\":\"started\"", ranks: [0, 1, 2, 3], timeout: .seconds(30)))
        usleep(500_000)
        let stoppedAt = Date().timeIntervalSince1970
        job.workers.signal(victim, SIGSTOP)
        let evicted = job.workers.waitForMarker("\"event\":\"change\"", ranks: [0, 1, 2, 3].filter { $0 != victim }, timeout: .seconds(20))
        // Let the others train without it for a while, then wake it.
        usleep(1_000_000)
        job.workers.signal(victim, SIGCONT)
        let outputs = job.workers.wait(timeout: .seconds(120))
        #expect(evicted, "the survivors never changed membership: \(outputs.map { $0.stderr.suffix(1500) })")
        for output in outputs where output.rank != victim {
            #expect(output.status == 0, "member \(output.rank): \(output.stderr.suffix(800))")
            let change = try #require(output.events("change").first, "\(outputs.map { $0.stderr.suffix(1500) })")
            #expect(change["lost"] as? [Int] == [victim], "\(outputs.map { $0.stdout.suffix(1500) + $0.stderr.suffix(1500) })")
            let detected = (change["detected_at"] as? Double ?? 0) - stoppedAt
            // Heartbeats name a hung member after 1.5 s of silence (checked every 0.1 s); the
            // margin is for a loaded machine.
            #expect(detected < 2.5, "detected after \(detected) s")
            #expect(output.done?["steps"] as? Int == 200)
        }
        // The woken member finds its epoch over, is refused as a member, and joins again under
        // a new id with the others' state: it never corrupts the ring, and all finish equal.
        let woken = outputs[victim]
        #expect(woken.status == 0, "\(woken.stderr.suffix(800))")
        #expect(woken.stderr.contains("asking to join again"), "\(woken.stderr.suffix(800))")
        #expect(woken.done?["steps"] as? Int == 200, "\(woken.stderr.suffix(1500))")
        #expect(woken.done?["world_size"] as? Int == 4, "\(outputs.map { $0.events("change").map { "\($0["epoch"] ?? "") \($0["lost"] ?? "") \($0["joined"] ?? "") \($0["reason"] ?? "")" } })")
        let hashes = Set(outputs.filter { $0.status == 0 }.compactMap { $0.done?["params_hash"] as? String })
        #expect(hashes.count == 1, "\(hashes)")
    }

    @Test func aReplacementJoinsAfterAKillAndAStrangerIsRefused() throws {
        // 10 ms a step: the job runs 5 s after the kill, time for the stranger's refusal and the
        // replacement's start even on a loaded machine.
        let steps = 500
        let job = try ElasticJob(worldSize: 3, steps: steps, extra: ["--step-delay-ms", "10", "--fault", "kill:1:30"])
        #expect(job.workers.waitForMarker("\"event\":\"change\"", ranks: [0, 2], timeout: .seconds(30)))
        // A process with the wrong secret tries first: refused, and the job goes on.
        let stranger = try job.joiner(steps: steps, secret: "not-the-secret")
        let strangerOutput = stranger.wait(timeout: .seconds(60))[0]
        #expect(strangerOutput.status != 0)
        #expect(strangerOutput.stderr.contains("secret"), "\(strangerOutput.stderr.suffix(600))")
        let replacement = try job.joiner(steps: steps)
        let joined = replacement.wait(timeout: .seconds(120))[0]
        let outputs = job.workers.wait(timeout: .seconds(120))
        #expect(joined.status == 0, "joiner: \(joined.stderr.suffix(800))")
        let joinerDone = try #require(joined.done)
        #expect(joinerDone["world_size"] as? Int == 3)
        #expect(joinerDone["steps"] as? Int == steps)
        for output in outputs where output.rank != 1 {
            #expect(output.status == 0, "member \(output.rank): \(output.stderr.suffix(800))")
            #expect(output.events("change").contains { ($0["joined"] as? [Int])?.isEmpty == false })
        }
        // Every member the stranger tried logged why it was refused.
        #expect(outputs.contains { $0.stderr.contains("does not know the job secret") })
        let hashes = Set((outputs.filter { $0.rank != 1 } + [joined]).compactMap { $0.done?["params_hash"] as? String })
        #expect(hashes.count == 1, "\(hashes)")

        let intact = try ElasticJob(worldSize: 3, steps: steps)
        #expect(intact.workers.wait(timeout: .seconds(120)).allSatisfy { $0.status == 0 })
        let joinerID = try #require(joinerDone["member"] as? Int)
        let difference = ElasticJob.relativeDifference(try job.weights(member: joinerID), try intact.weights(member: 0))
        #expect(difference < 1e-5, "relative difference \(difference) from the run without failure")
    }

    @Test func belowTheMinimumTheSurvivorSavesAndStopsAndARestartFinishes() throws {
        let steps = 60
        let checkpoints = ElasticJob.temporaryDirectory()
        let job = try ElasticJob(
            worldSize: 2, steps: steps,
            extra: ["--min-members", "2", "--join-wait-s", "1", "--checkpoint-dir", checkpoints, "--checkpoint-every", "10", "--fault", "kill:1:25"])
        let started = ContinuousClock.now
        let outputs = job.workers.wait(timeout: .seconds(60))
        #expect(ContinuousClock.now - started < .seconds(30), "the wait for joiners is bounded")
        let survivor = outputs[0]
        #expect(survivor.status != 0)
        #expect(survivor.stderr.contains("below the minimum of 2"), "\(survivor.stderr.suffix(800))")
        #expect(survivor.stderr.contains("restart the job to resume"), "\(survivor.stderr.suffix(800))")
        let saved = try FileManager.default.contentsOfDirectory(atPath: checkpoints).filter { $0.hasSuffix(".safetensors") }
        #expect(saved.contains("step-000000000025.safetensors"), "\(saved)")
        // Exactly one member wrote each periodic checkpoint.
        for step in [10, 20] {
            let writers = outputs.filter { $0.stderr.contains("checkpoint step \(step): ") }
            #expect(writers.count == 1, "step \(step) written by \(writers.map(\.rank))")
        }

        // A fresh job on the same directory resumes at step 25 and finishes exactly like a job
        // that never stopped.
        let restarted = try ElasticJob(worldSize: 2, steps: steps, extra: ["--checkpoint-dir", checkpoints, "--checkpoint-every", "10"])
        let resumed = restarted.workers.wait(timeout: .seconds(60))
        #expect(resumed.allSatisfy { $0.status == 0 }, "\(resumed.map { $0.stderr.suffix(500) })")
        #expect(resumed.allSatisfy { $0.done?["committed"] as? Int == steps - 25 })
        let intact = try ElasticJob(worldSize: 2, steps: steps)
        let reference = intact.workers.wait(timeout: .seconds(60))
        let resumedHashes = Set(resumed.compactMap { $0.done?["params_hash"] as? String })
        let referenceHashes = Set(reference.compactMap { $0.done?["params_hash"] as? String })
        #expect(resumedHashes.count == 1 && resumedHashes == referenceHashes, "\(resumedHashes) vs \(referenceHashes)")
    }
}
