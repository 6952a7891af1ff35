import ArgumentParser
import Foundation
import Phalanx
@_spi(Benchmarking) import PhalanxCheckpoint
import Crypto

/// `phalanx-bench checkpoint`: the cost of a save on the training thread (one copy of the
/// state into the snapshot) against one memcpy of the same bytes, and the background writer's
/// throughput against a plain sequential write of the same bytes to the same directory.
struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint", abstract: "Checkpoint stall and write throughput for a model with Adam state.")

    @Option(help: "Model parameters (Adam adds two moments per parameter).")
    var parameters = 100_000_000

    @Option(help: "Directory to write into (default: a fresh one under the system temp directory).")
    var directory: String?

    @Option(help: "Saves to time (the median is reported).")
    var repeats = 3

    @Flag(help: "Print JSON lines instead of a table.")
    var json = false

    func run() throws {
        let dir = directory ?? FileManager.default.temporaryDirectory.appendingPathComponent("phalanx-ckpt-bench-\(getpid())").path
        defer { if directory == nil { try? FileManager.default.removeItem(atPath: dir) } }
        let n = parameters
        let values = FlatBuffer(count: n), state = FlatBuffer(count: 2 * n)
        for i in stride(from: 0, to: n, by: 4096) { values.baseAddress[i] = Float(i) }
        for i in stride(from: 0, to: 2 * n, by: 4096) { state.baseAddress[i] = Float(i) }
        let half = n / 2
        var snapshot = try CheckpointSnapshot(
            groups: [
                .init(entries: [("layers.0.weight", [half], 0), ("layers.1.weight", [n - half], half)], copying: UnsafeBufferPointer(values.buffer)),
                .init(entries: [("optimizer.adam.m.all", [n], 0), ("optimizer.adam.v.all", [n], n)], copying: UnsafeBufferPointer(state.buffer)),
            ],
            metadata: TrainingMetadata(step: 0))
        let bytes = Double(3 * n * 4)

        // Stall: refill the snapshot (what the training thread does) vs memcpy into a mapped buffer.
        let target = UnsafeMutableRawPointer.allocate(byteCount: 3 * n * 4, alignment: 64)
        defer { target.deallocate() }
        memset(target, 0, 3 * n * 4)
        let (stall, copy) = Timing.paired(repeats: max(repeats, 3)) {
            snapshot.refill(group: 0, from: UnsafeBufferPointer(values.buffer))
            snapshot.refill(group: 1, from: UnsafeBufferPointer(state.buffer))
        } _: {
            memcpy(target, values.baseAddress, n * 4)
            memcpy(target + n * 4, state.baseAddress, 2 * n * 4)
        }

        // Checksums over the optimizer state (two thirds of what a save hashes), each paired with
        // one memcpy of the same bytes: XXH3-128 (what checkpoints use) and SHA-256 (swift-crypto,
        // SHA-NI where the CPU has it), the candidates of the choice.
        let stateBytes = UnsafeRawBufferPointer(start: state.baseAddress, count: 2 * n * 4)
        var digests: [String] = []
        let (xxh3, copyX) = try Timing.paired(repeats: max(repeats, 3)) { digests.append(try FileDigest.of(stateBytes)) } _: {
            memcpy(target, state.baseAddress, 2 * n * 4)
        }
        let (sha256, copyS) = Timing.paired(repeats: max(repeats, 3)) { digests.append(SHA256.hash(data: stateBytes).description) } _: {
            memcpy(target, state.baseAddress, 2 * n * 4)
        }
        guard Set(digests).count == 2 else { throw BenchmarkError.wrongResult("a checksum changed between repeats") }
        let stateMB = Double(2 * n * 4) / 1e6

        // Throughput: the store's atomic save (temp file, fsync, rename, directory fsync) vs a plain
        // sequential write + fsync of the same bytes, alternating.
        let store = try CheckpointStore(directory: dir, keep: 1)
        let plainPath = (dir as NSString).appendingPathComponent("plain.bin")
        var step = 0
        var saveTimes: [Double] = [], plainTimes: [Double] = []
        var droppedCaches = true
        for round in 0..<repeats {
            step += 1
            snapshot.metadata.step = step
            // Alternate which goes first, so that neither always follows the other's writeback.
            for first in [round % 2 == 0, round % 2 != 0] {
                // Same starting point for both: dirty data flushed and, where allowed (root), the
                // page cache emptied, so neither inherits the other's free or cached pages.
                droppedCaches = dropCaches() && droppedCaches
                let start = Timing.now()
                if first {
                    try store.save(snapshot)
                    saveTimes.append(Timing.now() - start)
                } else {
                    // Like the store, a new file each time, the previous one removed afterwards
                    // (rewriting one file in place would reuse its page-cache pages, which a
                    // series of checkpoints never can).
                    let path = plainPath + ".\(step)"
                    try plainWrite(path: path, sources: [(values.baseAddress, n * 4), (state.baseAddress, 2 * n * 4)])
                    unlink(plainPath + ".\(step - 1)")
                    plainTimes.append(Timing.now() - start)
                }
            }
        }
        unlink(plainPath + ".\(step)")
        guard store.latestValid().checkpoint?.step == step else { throw BenchmarkError.wrongResult("the last checkpoint does not verify") }
        let save = Timing.median(of: saveTimes), plain = Timing.median(of: plainTimes)
        let results = [
            BenchmarkResult(
                name: "save stall, \(n / 1_000_000)M params + Adam", ours: stall * 1e3, baseline: copy * 1e3, unit: "ms",
                baselineName: "one memcpy of the state", goal: 1.1, higherIsBetter: false),
            BenchmarkResult(
                name: "checksum XXH3-128, \(Int(stateMB)) MB", ours: stateMB / xxh3 / 1e3, baseline: stateMB / copyX / 1e3, unit: "GB/s",
                baselineName: "one memcpy of the same bytes", goal: 0.5, higherIsBetter: true),
            BenchmarkResult(
                name: "checksum SHA-256 (swift-crypto; the other candidate, no goal), \(Int(stateMB)) MB", ours: stateMB / sha256 / 1e3,
                baseline: stateMB / copyS / 1e3, unit: "GB/s", baselineName: "one memcpy of the same bytes", goal: 0, higherIsBetter: true),
            BenchmarkResult(
                name: "checkpoint write, \(Int(bytes / 1e6)) MB", ours: bytes / save / 1e9, baseline: bytes / plain / 1e9, unit: "GB/s",
                baselineName: "plain write + fsync, same dir", goal: 0.9, higherIsBetter: true),
        ]
        if json { results.forEach { print($0.jsonLine()) } } else {
            BenchmarkResult.printTable(results)
            print(droppedCaches ? "page cache dropped before every timed write" : "page cache NOT dropped (needs root): write figures depend on cache state")
        }
    }

    /// `sync`, then empties the page cache if this process may; true if it did.
    private func dropCaches() -> Bool {
        sync()
        guard let handle = FileHandle(forWritingAtPath: "/proc/sys/vm/drop_caches") else { return false }
        defer { try? handle.close() }
        return (try? handle.write(contentsOf: Data("3\n".utf8))) != nil
    }

    private func plainWrite(path: String, sources: [(UnsafeMutablePointer<Float>, Int)]) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw BenchmarkError.wrongResult("cannot create \(path)") }
        defer { close(fd) }
        for (base, byteCount) in sources {
            var done = 0
            let raw = UnsafeRawPointer(base)
            while done < byteCount {
                let n = write(fd, raw + done, min(byteCount - done, 64 << 20))
                guard n > 0 else { throw BenchmarkError.wrongResult("write failed") }
                done += n
            }
        }
        guard fsync(fd) == 0 else { throw BenchmarkError.wrongResult("fsync failed") }
    }
}
