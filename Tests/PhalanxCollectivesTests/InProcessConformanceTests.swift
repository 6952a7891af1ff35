@_spi(Benchmarking) import PhalanxCollectives
import PhalanxTesting
import Testing

/// The conformance suite over the in-process transport: N ranks as threads.
@Suite struct InProcessConformanceTests {
    @Test(arguments: 1...6)
    func conformance(worldSize: Int) throws {
        let ring = InProcessRing(worldSize: worldSize)
        let counts = ConformanceSuite.counts(worldSize: worldSize)
        let results = RankThreads.run(count: worldSize) { rank -> [String] in
            let communicator = RingCommunicator(transport: ring.transport(rank: rank))
            do {
                // 64 KiB segments: the 1,000,003-element chunks span several segments.
                return try ConformanceSuite.run(on: communicator, counts: counts, options: CollectiveOptions(segmentBytes: 64 << 10))
            } catch {
                return ["\(error)"]
            }
        }
        #expect(results.count == worldSize)
        for failures in results { #expect(failures.isEmpty, "\(failures.prefix(3))") }
    }

    /// Segments of two floats (set past the initializer, which keeps at least 64 bytes): chunks of
    /// 2 and 3 elements then span one and two segments, so steps carry different numbers of
    /// frames, in both wire orders.
    @Test(arguments: [2, 3, 4, 5], [true, false])
    func tinySegmentsInBothOrders(worldSize: Int, interleaved: Bool) throws {
        let ring = InProcessRing(worldSize: worldSize)
        let counts = [0, 1, worldSize - 1, worldSize + 1, 13, 2 * worldSize + 1, 3 * worldSize - 1, 101]
        let results = RankThreads.run(count: worldSize) { rank -> [String] in
            let communicator = RingCommunicator(transport: ring.transport(rank: rank))
            communicator.interleavesSteps = interleaved
            communicator.smallMessageBytes = 0
            do {
                var options = CollectiveOptions()
                options.segmentBytes = 8
                return try ConformanceSuite.run(on: communicator, counts: counts, options: options)
            } catch {
                return ["\(error)"]
            }
        }
        #expect(results.count == worldSize)
        for failures in results { #expect(failures.isEmpty, "\(failures.prefix(3))") }
    }

    @Test(arguments: [2, 3, 5])
    func repeatedAllReducesAreBitIdenticalOnEveryRank(worldSize: Int) {
        let ring = InProcessRing(worldSize: worldSize)
        let hashes = RankThreads.run(count: worldSize) { rank -> UInt64? in
            try? ConformanceSuite.repeatedAllReduceChecksum(on: RingCommunicator(transport: ring.transport(rank: rank)), maximumCount: 5000)
        }
        #expect(hashes.count == worldSize)
        #expect(hashes.allSatisfy { $0 != nil && $0 == hashes[0] })
    }

    @Test func mismatchedCountsFailOnEveryRank() {
        let ring = InProcessRing(worldSize: 3)
        let errors = RankThreads.run(count: 3) { rank -> CollectiveError? in
            let communicator = RingCommunicator(transport: ring.transport(rank: rank))
            var buffer = [Float](repeating: 1, count: rank == 1 ? 10 : 12)
            do {
                try buffer.withUnsafeMutableBufferPointer { try communicator.allReduce($0, op: .sum, options: CollectiveOptions(timeout: .seconds(5))) }
                return nil
            } catch let error as CollectiveError {
                return error
            } catch { return nil }
        }
        #expect(errors.count == 3)
        for error in errors {
            #expect(error?.code == .sizeMismatch || error?.code == .peerAborted, "\(String(describing: error))")
        }
        #expect(errors.contains { $0?.code == .sizeMismatch })
    }

    @Test func lostPeerFailsTheNeighboursAndClosesTheCommunicator() {
        let ring = InProcessRing(worldSize: 4)
        let errors = RankThreads.run(count: 4) { rank -> CollectiveError? in
            if rank == 2 {
                ring.kill(rank: 2)
                return nil
            }
            let communicator = RingCommunicator(transport: ring.transport(rank: rank))
            var buffer = [Float](repeating: 1, count: 1000)
            do {
                try buffer.withUnsafeMutableBufferPointer { try communicator.allReduce($0, op: .sum, options: CollectiveOptions(timeout: .seconds(5))) }
                return nil
            } catch let error as CollectiveError {
                // A closed communicator refuses further calls.
                do {
                    try communicator.barrier()
                } catch let again as CollectiveError where again.code == .closed {
                    return error
                } catch {}
                return nil
            } catch { return nil }
        }
        let survivors = [errors[0], errors[1], errors[3]]
        for error in survivors {
            #expect(error != nil)
            #expect(error?.peer == 2, "\(String(describing: error))")
        }
    }

    @Test func chunkLayoutCoversEverything() {
        for count in [0, 1, 5, 6, 7, 1_000_003] {
            for parts in 1...7 {
                let layout = ChunkLayout(count: count, parts: parts)
                let ranges = (0..<parts).map(layout.range)
                #expect(ranges.first?.lowerBound == 0 && ranges.last?.upperBound == count)
                #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
                #expect((ranges.map(\.count).max() ?? 0) - (ranges.map(\.count).min() ?? 0) <= 1)
            }
        }
    }

    @Test func invalidRootIsAnError() {
        let ring = InProcessRing(worldSize: 1)
        let communicator = RingCommunicator(transport: ring.transport(rank: 0))
        var buffer: [Float] = [1]
        #expect(throws: CollectiveError.self) { try buffer.withUnsafeMutableBufferPointer { try communicator.broadcast($0, from: 3) } }
    }
}
