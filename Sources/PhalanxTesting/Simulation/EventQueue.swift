/// A min-heap of timed items; items at the same time come out in the order they were pushed.
struct EventQueue<Item> {
    private var heap: [(time: Int64, order: UInt64, item: Item)] = []
    private var pushed: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }
    var count: Int { heap.count }

    mutating func push(_ item: Item, at time: Int64) {
        pushed += 1
        heap.append((time, pushed, item))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.before(heap[child], heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (time: Int64, item: Item)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var first = parent
            if left < heap.count, Self.before(heap[left], heap[first]) { first = left }
            if right < heap.count, Self.before(heap[right], heap[first]) { first = right }
            guard first != parent else { break }
            heap.swapAt(parent, first)
            parent = first
        }
        return (top.time, top.item)
    }

    private static func before(_ a: (time: Int64, order: UInt64, item: Item), _ b: (time: Int64, order: UInt64, item: Item)) -> Bool {
        a.time != b.time ? a.time < b.time : a.order < b.order
    }
}
