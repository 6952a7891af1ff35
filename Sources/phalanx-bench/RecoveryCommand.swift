import ArgumentParser
import Foundation
import PhalanxTesting

/// `phalanx-bench recovery`: what a killed member costs an elastic job, phase by phase, and what
/// elastic mode costs when nothing fails (against the plain TCP ring, same workload).
struct RecoveryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recovery",
        abstract: "Milliseconds to detect, agree, rebuild, restore and commit the next step after a SIGKILLed member; steps lost; steady-state overhead of elastic mode against the plain TCP ring (both in one job, alternating).")

    @Option(help: "World sizes, comma-separated.")
    var ranks = "3,4"
    @Option(help: "Steps per job.")
    var steps = 120
    @Option(help: "The step at which the victim kills itself (after its backward pass).")
    var killStep = 60
    @Option(help: "Hidden width of the synthetic MLP (input 256, two hidden layers, 10 classes).")
    var hidden = 512
    @Option(help: "Global batch size.")
    var batch = 256
    @Option(help: "Jobs timing plain and elastic steps in alternating blocks, for the overhead.")
    var repeats = 3
    @Flag(help: "Print JSON lines instead of a table.")
    var json = false

    func run() throws {
        var rows: [[String: Any]] = []
        let workload = ["--steps", "\(steps)", "--hidden", "\(hidden)", "--batch", "\(batch)"]
        for p in ranks.split(separator: ",").compactMap({ Int($0) }) {
            let overhead = try measureOverhead(ranks: p, workload: workload + ["--policy", "snapshot"])
            let inPlace = try measureOverhead(ranks: p, workload: workload + ["--policy", "inplace"])
            for victim in Array(Set([0, p / 2, p - 1])).sorted() {
                let outputs = try LoopbackJob.run(
                    ranks: p, arguments: ["train-worker", "--mode", "elastic", "--fault", "\(victim):\(killStep)"] + workload)
                guard let killedAt = outputs[victim].jsonLines.first(where: { $0["event"] as? String == "killed" })?["at"] as? Double,
                      var row = Self.phases(outputs, victims: [victim], failedAt: killedAt) else {
                    FileHandle.standardError.write(Data("warning: no recovery measured at \(p) ranks, victim \(victim)\n".utf8))
                    continue
                }
                row["ranks"] = p
                row["killed_rank"] = victim
                row["failure"] = "SIGKILL"
                row["overhead_pct"] = overhead.percent
                row["plain_step_us"] = overhead.plain
                row["elastic_step_us"] = overhead.elastic
                row["overhead_inplace_pct"] = inPlace.percent
                row["plain_step_inplace_run_us"] = inPlace.plain
                row["elastic_inplace_step_us"] = inPlace.elastic
                if json { emit(row) }
                rows.append(row)
            }
            // Two members killed in the same step, and a member killed during the recovery.
            for (label, victims, fault) in [
                ("2×SIGKILL", [0, p - 1], "0:\(killStep),\(p - 1):\(killStep)"),
                ("+recovery", [p / 2, p - 1], "\(p / 2):\(killStep),\(p - 1):recovery"),
            ] where p >= 3 {
                let outputs = try LoopbackJob.run(ranks: p, arguments: ["train-worker", "--mode", "elastic", "--fault", fault] + workload)
                guard let killedAt = victims.compactMap({ outputs[$0].jsonLines.first(where: { $0["event"] as? String == "killed" })?["at"] as? Double }).min(),
                      var row = Self.phases(outputs, victims: victims, failedAt: killedAt) else {
                    FileHandle.standardError.write(Data("warning: no recovery measured at \(p) ranks, \(label)\n".utf8))
                    continue
                }
                row["ranks"] = p
                row["killed_rank"] = victims[0]
                row["failure"] = label
                row["overhead_pct"] = overhead.percent
                row["overhead_inplace_pct"] = inPlace.percent
                if json { emit(row) }
                rows.append(row)
            }
            if var row = try measureHang(ranks: p, victim: p / 2, workload: workload) {
                row["overhead_pct"] = overhead.percent
                row["overhead_inplace_pct"] = inPlace.percent
                if json { emit(row) }
                rows.append(row)
            }
        }
        if !json { Self.printTable(rows) }
    }

    /// Median over `repeats` jobs of the paired measurement (plain and elastic in alternating
    /// blocks of one job), each job's step times averaged over its ranks.
    private func measureOverhead(ranks p: Int, workload: [String]) throws -> (percent: Double, plain: Double, elastic: Double) {
        var ratios: [Double] = [], plains: [Double] = [], elastics: [Double] = []
        for _ in 0..<max(1, repeats) {
            let outputs = try LoopbackJob.run(ranks: p, arguments: ["train-worker", "--mode", "paired"] + workload, secondRing: true)
            let done = outputs.compactMap { $0.jsonLines.last { $0["event"] as? String == "done" } }
            guard done.count == p else { throw ValidationError("a paired job at \(p) ranks did not finish: \(outputs.map { $0.stderr.suffix(300) })") }
            let plain = done.compactMap { $0["plain_step_us"] as? Double }.reduce(0, +) / Double(p)
            let elastic = done.compactMap { $0["elastic_step_us"] as? Double }.reduce(0, +) / Double(p)
            plains.append(plain)
            elastics.append(elastic)
            ratios.append(elastic / plain)
        }
        return ((Timing.median(of: ratios) - 1) * 100, Timing.median(of: plains), Timing.median(of: elastics))
    }

    /// A hung member: SIGSTOP once every member trains, SIGKILL once the survivors finished.
    private func measureHang(ranks p: Int, victim: Int, workload: [String]) throws -> [String: Any]? {
        let (job, servers) = try LoopbackJob.start(ranks: p, arguments: ["train-worker", "--mode", "elastic"] + workload + ["--steps", "\(steps * 3)"])
        let survivors = (0..<p).filter { $0 != victim }
        guard job.waitForMarker("\"event\":\"started\"", ranks: Array(0..<p), timeout: .seconds(60)) else { return nil }
        usleep(300_000)
        let stoppedAt = Date().timeIntervalSince1970
        job.signal(victim, SIGSTOP)
        _ = job.waitForMarker("\"event\":\"done\"", ranks: survivors, timeout: .seconds(120))
        job.signal(victim, SIGKILL)
        let outputs = withExtendedLifetime(servers) { job.wait(timeout: .seconds(30)) }
        guard var row = Self.phases(outputs, victims: [victim], failedAt: stoppedAt) else { return nil }
        row["ranks"] = p
        row["killed_rank"] = victim
        row["failure"] = "SIGSTOP"
        return row
    }

    /// The phases as the slowest survivor saw them (each phase ends when the last survivor ends
    /// it), from the moment of the (first) failure (wall clock). With several failures the
    /// survivors may go through several changes: detection counts from the first, the other
    /// phases end with the last, and training resumes at the first commit after it.
    static func phases(_ outputs: [WorkerProcesses.Output], victims: [Int], failedAt killedAt: Double) -> [String: Any]? {
        func events(_ name: String, _ output: WorkerProcesses.Output) -> [[String: Any]] { output.jsonLines.filter { $0["event"] as? String == name } }
        let survivors = outputs.filter { !victims.contains($0.rank) }
        let changes = survivors.compactMap { events("change", $0).last }
        let detections = survivors.compactMap { events("change", $0).first?["detected_at"] as? Double }
        let firsts = survivors.compactMap { events("first_commit", $0).last?["at"] as? Double }
        guard changes.count == survivors.count, firsts.count == survivors.count, detections.count == survivors.count else { return nil }
        func latest(_ key: String) -> Double { changes.compactMap { $0[key] as? Double }.max() ?? .nan }
        let detected = detections.max() ?? .nan, agreed = latest("agreed_at"), rebuilt = latest("rebuilt_at"), restored = latest("restored_at")
        let first = firsts.max() ?? .nan
        let lost = changes.compactMap { change -> Int? in
            guard let interrupted = change["interrupted_step"] as? Int, let redo = change["redo_step"] as? Int else { return nil }
            return interrupted - redo + 1
        }.max() ?? -1
        let kept = changes.compactMap { $0["kept_connections"] as? Int }.reduce(0, +)
        return [
            "detect_ms": (detected - killedAt) * 1000, "agree_ms": (agreed - detected) * 1000, "rebuild_ms": (rebuilt - agreed) * 1000,
            "restore_ms": (restored - rebuilt) * 1000, "first_step_ms": (first - restored) * 1000,
            "after_detection_ms": (first - detected) * 1000, "steps_lost": lost, "kept_connection_ends": kept,
        ]
    }

    static func printTable(_ rows: [[String: Any]]) {
        print("Recovery from a SIGKILLed or SIGSTOPped member (synthetic MLP, loopback); each phase ends when the last survivor ends it")
        print("ranks  failure    member  detect ms  agree ms  rebuild ms  restore ms  1st step ms  after detect ms  steps lost  kept ends  overhead % (snapshot / in place)")
        for row in rows {
            func value(_ key: String) -> Double { row[key] as? Double ?? .nan }
            print(String(
                format: "%5d  %9@  %6d  %9.1f  %8.1f  %10.1f  %10.1f  %11.1f  %15.1f  %10d  %9d  %10.2f / %.2f",
                row["ranks"] as? Int ?? 0, (row["failure"] as? String ?? "") as NSString, row["killed_rank"] as? Int ?? 0, value("detect_ms"), value("agree_ms"), value("rebuild_ms"),
                value("restore_ms"), value("first_step_ms"), value("after_detection_ms"), row["steps_lost"] as? Int ?? -1,
                row["kept_connection_ends"] as? Int ?? 0, value("overhead_pct"), value("overhead_inplace_pct")))
        }
        var seen: Set<Int> = []
        for row in rows where seen.insert(row["ranks"] as? Int ?? 0).inserted {
            print(String(
                format: "steady state at %d ranks: plain TCP ring %.0f µs/step vs elastic (snapshot) %.0f; plain %.0f vs elastic (in place) %.0f",
                row["ranks"] as? Int ?? 0, row["plain_step_us"] as? Double ?? 0, row["elastic_step_us"] as? Double ?? 0,
                row["plain_step_inplace_run_us"] as? Double ?? 0, row["elastic_inplace_step_us"] as? Double ?? 0))
        }
    }
}
