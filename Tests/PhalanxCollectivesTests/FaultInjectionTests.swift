import PhalanxCollectives
import PhalanxTesting
import Testing

/// The fault-injecting transport does what it says, and the ring reacts as with a real fault.
@Suite struct FaultInjectionTests {
    @Test func injectedFailureFailsEveryRankAtThatCall() {
        let ring = InProcessRing(worldSize: 3)
        let outcomes = RankThreads.run(count: 3) { rank -> [String] in
            let base = ring.transport(rank: rank)
            let transport: any Transport = rank == 1
                ? FaultInjectingTransport(wrapping: base, faults: [.init(sequence: 2): .fail(.connectionLost, message: "cable pulled")])
                : base
            let communicator = RingCommunicator(transport: transport)
            var log: [String] = []
            for call in 0..<4 {
                var buffer = [Float](repeating: 1, count: 100)
                do {
                    try buffer.withUnsafeMutableBufferPointer { try communicator.allReduce($0, op: .sum, options: CollectiveOptions(timeout: .seconds(5))) }
                    log.append("ok")
                } catch let error as CollectiveError {
                    log.append("\(call):\(error.code)")
                } catch { log.append("other") }
            }
            return log
        }
        // Calls 0 and 1 succeed everywhere; call 2 fails everywhere; call 3 is refused (closed).
        for log in outcomes {
            #expect(log.prefix(2) == ["ok", "ok"], "\(log)")
            #expect(log.count == 4 && log[2].hasPrefix("2:") && log[3] == "3:closed", "\(log)")
        }
        #expect(outcomes[1][2] == "2:connectionLost")
        #expect(outcomes[0][2] == "2:peerAborted" && outcomes[2][2] == "2:peerAborted")
    }

    @Test func corruptionIsInjectedIntoTheReceivedPayload() {
        let ring = InProcessRing(worldSize: 2)
        let results = RankThreads.run(count: 2) { rank -> [Float] in
            let base = ring.transport(rank: rank)
            let transport: any Transport = rank == 0 ? FaultInjectingTransport(wrapping: base, faults: [.init(sequence: 0): .corruptPayload]) : base
            let communicator = RingCommunicator(transport: transport)
            communicator.smallMessageBytes = 0  // exercise the reduce-scatter path
            var buffer = [Float](repeating: 1, count: 8)
            try? buffer.withUnsafeMutableBufferPointer { try communicator.allReduce($0, op: .sum) }
            return buffer
        }
        // Without the fault every element would be 2; the flipped byte changes one of them.
        #expect(results.flatMap { $0 }.contains { $0 != 2 })
    }
}
