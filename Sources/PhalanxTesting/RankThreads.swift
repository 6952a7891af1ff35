import Foundation

/// Runs `body(rank)` for ranks `0..<count` on `count` dedicated threads and waits for all of
/// them. Unlike `DispatchQueue.concurrentPerform`, every rank really runs at the same time, which
/// collectives need (ranks block on each other).
public enum RankThreads {
    /// Runs the ranks and returns each rank's result, in rank order.
    public static func run<Result: Sendable>(count: Int, _ body: @escaping @Sendable (Int) -> Result) -> [Result] {
        let results = ResultSlots<Result>(count: count)
        let group = DispatchGroup()
        for rank in 0..<count {
            group.enter()
            let thread = Thread {
                results.set(rank, body(rank))
                group.leave()
            }
            thread.stackSize = 4 << 20
            thread.start()
        }
        group.wait()
        return results.values()
    }
}

final class ResultSlots<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [Value?]
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ index: Int, _ value: Value) {
        lock.lock()
        slots[index] = value
        lock.unlock()
    }
    func values() -> [Value] {
        lock.lock()
        defer { lock.unlock() }
        return slots.compactMap { $0 }
    }
}
