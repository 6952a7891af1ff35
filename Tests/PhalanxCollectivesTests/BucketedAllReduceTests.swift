import Foundation
import PhalanxCollectives
import PhalanxTesting
import Testing

/// The bucketed all-reduce that overlaps backward: the same sums as one whole all-reduce,
/// buckets reduced while "backward" goes on, and a failed bucket failing the step everywhere.
@Suite struct BucketedAllReduceTests {
    static let options = CollectiveOptions(timeout: .seconds(10))

    /// Rank `rank`'s gradients: whole numbers, so that every order of summing is exact.
    static func gradients(rank: Int, count: Int) -> [Float] { (0..<count).map { Float(($0 * 7 + rank * 13) % 101) } }

    @Test func bucketsGiveTheWholeAllReducesSums() {
        let ring = InProcessRing(worldSize: 3)
        let count = 1000
        let results = RankThreads.run(count: 3) { rank -> ([Float], Int, String?) in
            let communicator = RingCommunicator(transport: ring.transport(rank: rank))
            let reducer = BucketedAllReduce(bucketElements: 128)
            defer { reducer.close() }
            var buffer = Self.gradients(rank: rank, count: count)
            do {
                try buffer.withUnsafeMutableBufferPointer { pointer in
                    reducer.begin(pointer, over: communicator, options: Self.options)
                    // "Backward": gradients become final from the end, at uneven offsets and times.
                    for offset in [900, 700, 650, 300, 0] {
                        try reducer.ready(from: offset)
                        usleep(UInt32(1000 * (rank + 1)))
                    }
                    try reducer.finish()
                }
                return (buffer, reducer.bucketsReduced, nil)
            } catch { return (buffer, reducer.bucketsReduced, "\(error)") }
        }
        let expected = (0..<count).map { i in (0..<3).reduce(Float(0)) { $0 + Self.gradients(rank: $1, count: count)[i] } }
        for (rank, (buffer, buckets, error)) in results.enumerated() {
            #expect(error == nil, "rank \(rank): \(error ?? "")")
            #expect(buffer == expected, "rank \(rank)")
            #expect(buckets == 8, "1000 elements in buckets of 128")
        }
    }

    @Test func bucketsAreReducedWhileBackwardGoesOn() {
        let ring = InProcessRing(worldSize: 2)
        let results = RankThreads.run(count: 2) { rank -> (Bool, String?) in
            let communicator = RingCommunicator(transport: ring.transport(rank: rank))
            let reducer = BucketedAllReduce(bucketElements: 100)
            defer { reducer.close() }
            var buffer = Self.gradients(rank: rank, count: 300)
            do {
                var overlapped = false
                try buffer.withUnsafeMutableBufferPointer { pointer in
                    reducer.begin(pointer, over: communicator, options: Self.options)
                    try reducer.ready(from: 200)
                    // The last bucket is whole: it is reduced before backward reports more.
                    let deadline = Date().addingTimeInterval(5)
                    while reducer.bucketsReduced < 1, Date() < deadline { usleep(1000) }
                    overlapped = reducer.bucketsReduced == 1
                    try reducer.finish()
                }
                return (overlapped, nil)
            } catch { return (false, "\(error)") }
        }
        for (rank, (overlapped, error)) in results.enumerated() {
            #expect(error == nil, "rank \(rank): \(error ?? "")")
            #expect(overlapped, "rank \(rank): the first bucket was not reduced during backward")
        }
    }

    @Test func aFailedBucketFailsTheStepOnEveryRankAndStartsNoLaterBucket() {
        let ring = InProcessRing(worldSize: 3)
        let results = RankThreads.run(count: 3) { rank -> (String?, Int) in
            let base = ring.transport(rank: rank)
            // Rank 1's transport fails in the second bucket's all-reduce.
            let transport: any Transport = rank == 1
                ? FaultInjectingTransport(wrapping: base, faults: [.init(sequence: 1): .fail(.connectionLost, message: "cable pulled")])
                : base
            let communicator = RingCommunicator(transport: transport)
            let reducer = BucketedAllReduce(bucketElements: 50)
            defer { reducer.close() }
            var buffer = Self.gradients(rank: rank, count: 200)
            do {
                try buffer.withUnsafeMutableBufferPointer { pointer in
                    reducer.begin(pointer, over: communicator, options: Self.options)
                    try reducer.ready(from: 0)
                    try reducer.finish()
                }
                return (nil, reducer.bucketsReduced)
            } catch let error as CollectiveError { return ("\(error.code)", reducer.bucketsReduced) } catch { return ("other: \(error)", reducer.bucketsReduced) }
        }
        for (rank, (error, buckets)) in results.enumerated() {
            #expect(error != nil, "rank \(rank) finished a step whose second bucket failed")
            #expect(buckets == 1, "rank \(rank) reduced \(buckets) buckets; the step stops at the failed one")
        }
        #expect(results[1].0 == "connectionLost")
    }

    @Test func cancelLeavesTheCommunicatorFreeForTheNextCall() throws {
        let ring = InProcessRing(worldSize: 2)
        let results = RankThreads.run(count: 2) { rank -> String? in
            let communicator = RingCommunicator(transport: ring.transport(rank: rank))
            let reducer = BucketedAllReduce(bucketElements: 10)
            defer { reducer.close() }
            var buffer = [Float](repeating: 1, count: 40)
            do {
                try buffer.withUnsafeMutableBufferPointer { pointer in
                    reducer.begin(pointer, over: communicator, options: Self.options)
                    reducer.cancel()  // backward failed before any gradient was final
                    try communicator.allReduce(pointer, op: .sum, options: Self.options)
                }
                return buffer.allSatisfy { $0 == 2 } ? nil : "wrong sums \(buffer.prefix(4))"
            } catch { return "\(error)" }
        }
        #expect(results.allSatisfy { $0 == nil }, "\(results)")
    }

    @Test func aClosedReducerFailsTheStepInsteadOfWaiting() {
        let ring = InProcessRing(worldSize: 2)
        let results = RankThreads.run(count: 2) { rank -> [String] in
            let communicator = RingCommunicator(transport: ring.transport(rank: rank))
            let reducer = BucketedAllReduce(bucketElements: 10)
            var buffer = [Float](repeating: 1, count: 40)
            var log: [String] = []
            buffer.withUnsafeMutableBufferPointer { pointer in
                reducer.begin(pointer, over: communicator, options: Self.options)
                reducer.close()  // nothing was ready: no bucket started
                do { try reducer.finish(); log.append("finished") } catch { log.append(error is BucketedAllReduce.Closed ? "closed" : "\(error)") }
                reducer.begin(pointer, over: communicator, options: Self.options)
                do { try reducer.ready(from: 0); try reducer.finish(); log.append("finished") } catch { log.append(error is BucketedAllReduce.Closed ? "closed" : "\(error)") }
            }
            return log
        }
        #expect(results.allSatisfy { $0 == ["closed", "closed"] }, "\(results)")
    }
}
