import Foundation
import PhalanxTesting
import Testing

/// 200 silent and garbage connections against a job's listeners, during start-up and during
/// training: real member processes on loopback, each phase bounded in time.
@Suite(.serialized)
struct ConnectionFloodTests {
    /// How long the members of `job` take to start: until each has printed its "started" line.
    static func startUp(_ job: ElasticJob, since start: ContinuousClock.Instant) -> Duration? {
        guard job.workers.waitForMarker("\"event\":\"started\"", ranks: Array(0..<job.worldSize), timeout: .seconds(60)) else { return nil }
        return ContinuousClock.now - start
    }

    @Test func aFloodOfTheRendezvousDelaysTheStartByLessThanASecond() throws {
        // The same job without and then with the flood, in this run.
        let plainStart = ContinuousClock.now
        let plain = try ElasticJob(worldSize: 3, steps: 20)
        let plainTime = try #require(Self.startUp(plain, since: plainStart), "\(plain.workers.stderrSoFar(0).suffix(1500))")
        _ = plain.workers.wait(timeout: .seconds(60))

        let flood = ConnectionFlood()
        defer { flood.close() }
        let floodedStart = ContinuousClock.now
        let flooded = try ElasticJob(worldSize: 3, steps: 20) { port in
            flood.open(host: "127.0.0.1", port: port, silent: 100, garbage: 100)
        }
        let floodedTime = try #require(Self.startUp(flooded, since: floodedStart), "\(flooded.workers.stderrSoFar(0).suffix(1500))")
        let outputs = flooded.workers.wait(timeout: .seconds(60))
        #expect(flood.count == 200, "\(flood.failedToConnect) connections could not be opened")
        // The flood's own connections are part of the flooded start; what is left is the delay.
        #expect(floodedTime - plainTime < .seconds(1), "start-up took \(floodedTime) under the flood, \(plainTime) without")
        for output in outputs { #expect(output.done != nil, "\(output.stderr.suffix(1000))") }
        // The garbage was refused at once; the silent connections wait for their deadline.
        #expect(flooded.server.refusedConnections >= 100)
    }

    @Test func aFloodOfEveryMemberDuringTrainingDisturbsNothingAndAJoinerStillJoins() throws {
        // No member is lost, no step is discarded but those the joins interrupt, a newcomer
        // joins as fast under the flood as one did without it (within a second), and the five
        // members end with one model.
        let steps = 900
        let job = try ElasticJob(worldSize: 3, steps: steps, extra: ["--step-delay-ms", "10"])
        try #require(job.workers.waitForMarker("\"event\":\"started\"", ranks: [0, 1, 2], timeout: .seconds(60)), "\(job.workers.stderrSoFar(0).suffix(1500))")
        usleep(1_000_000)  // training
        func join() throws -> (WorkerProcesses, Duration) {
            let started = ContinuousClock.now
            let joiner = try job.joiner(steps: steps)
            #expect(joiner.waitForMarker("\"event\":\"started\"", count: 1, rank: 0, timeout: .seconds(30)), "\(joiner.stderrSoFar(0).suffix(1500))")
            return (joiner, ContinuousClock.now - started)
        }
        let (plainJoiner, plainJoin) = try join()
        usleep(1_000_000)
        // Every member's listener and the witness get their share of 200 connections, most of
        // them at member 0, whom a newcomer asks first: more silent connections than a listener
        // used to have handshake threads (64).
        let ports = (0..<3).compactMap { rank in
            job.workers.stdoutSoFar(rank).split(separator: "\n").compactMap { line -> Int? in
                guard line.contains("\"event\":\"started\""), let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
                return object["port"] as? Int
            }.first
        }
        try #require(ports.count == 3)
        let flood = ConnectionFlood()
        defer { flood.close() }
        flood.open(host: "127.0.0.1", port: UInt16(ports[0]), silent: 120, garbage: 30)
        for port in ports.dropFirst() { flood.open(host: "127.0.0.1", port: UInt16(port), silent: 10, garbage: 5) }
        flood.open(host: "127.0.0.1", port: job.witness.address.port, silent: 10, garbage: 10)
        #expect(flood.count == 200, "\(flood.failedToConnect) connections could not be opened")
        let (floodedJoiner, floodedJoin) = try join()
        #expect(floodedJoin - plainJoin < .seconds(1), "a join took \(floodedJoin) under the flood, \(plainJoin) without")
        let outputs = job.workers.wait(timeout: .seconds(120)) + plainJoiner.wait(timeout: .seconds(60)) + floodedJoiner.wait(timeout: .seconds(60))
        for output in outputs {
            #expect(output.done != nil, "\(output.stderr.suffix(1500))")
            // A join interrupts one step (it is discarded on every member, as always).
            let discarded = output.events("discarded").compactMap { $0["reason"] as? String }
            #expect(discarded.count <= 2 && discarded.allSatisfy { $0.contains("asks to join") || $0.contains("started an agreement") },
                    "steps discarded: \(discarded)")
            let lost = output.events("change").flatMap { ($0["lost"] as? [Int]) ?? [] }
            #expect(lost.isEmpty, "members were lost: \(lost)")
        }
        // Every first member saw the two joins, and only them.
        for output in outputs.prefix(3) {
            let joined = output.events("change").map { ($0["joined"] as? [Int]) ?? [] }
            #expect(joined.count == 2 && joined.allSatisfy { $0.count == 1 }, "\(output.events("change"))")
        }
        let weights = try (0..<5).map { try job.weights(member: $0) }
        for other in weights.dropFirst() { #expect(other == weights[0]) }
    }
}
