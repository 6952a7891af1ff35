import Foundation
import PhalanxTesting
import Testing

/// The convolutional and the transformer example under phalanx-run: a worker killed mid-run
/// (the all-reduce overlapping backward, so buckets are in flight when it dies) is replaced,
/// and the job ends within tolerance of the fault-free run: the same weights up to rounding,
/// the same held-out loss and accuracy.
@Suite(.serialized) struct RealModelFaultTests {
    static let cases: [String: (arguments: [String], killAt: Int)] = [
        "DigitsCNN": (["--channels", "8", "--hidden", "32", "--batch-size", "64", "--steps", "120"], 50),
        "TinyGPT": (["--characters", "60000", "--context", "32", "--embed", "32", "--heads", "2", "--blocks", "1", "--batch-size", "32", "--steps", "60",
                     "--sample-length", "60"], 25),
    ]

    @Test(arguments: ["DigitsCNN", "TinyGPT"])
    func aKilledWorkerEndsWithinToleranceOfTheFaultFreeRun(_ example: String) throws {
        let setup = try #require(Self.cases[example])
        let out = PhalanxRunTests.directory("real-\(example)")
        func job(_ name: String, _ extra: [String]) throws -> (output: WorkerProcesses.Output, weights: [[Float]], done: [[String: Any]]) {
            let output = try WorkerProcesses(
                executable: "phalanx-run",
                arguments: ["--nproc", "3", "--max-restarts", "1", "--", ExampleLaunchTests.binary(example), "--json"] + setup.arguments + extra
                    + ["--save", "\(out)/\(name)-{member}.safetensors"],
                count: 1) { _ in ExampleLaunchTests.rootEnvironment }.wait(timeout: .seconds(300))[0]
            #expect(output.status == 0, "\(name): \(output.stderr.suffix(1500))")
            let files = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.hasPrefix("\(name)-") }.sorted()
            return (output, try files.map { try FinalWeights.load(at: "\(out)/\($0)") }, ExampleLaunchTests.launcherEvents(output.stdout, "done"))
        }
        let clean = try job("clean", ["--overlap", "off"])
        let faulted = try job("faulted", ["--overlap", "on", "--bucket-kb", "4", "--kill-rank", "1", "--at-step", "\(setup.killAt)", "--step-delay-ms", "5"])
        // The survivors lost member 1 in the step it died in, and a replacement joined.
        let changes = ExampleLaunchTests.launcherEvents(faulted.output.stdout, "change")
        #expect(changes.contains { $0["lost"] as? [Int] == [1] && $0["interrupted_step"] as? Int == setup.killAt }, "\(faulted.output.stdout.suffix(1500))")
        #expect(changes.contains { ($0["joined"] as? [Int])?.isEmpty == false }, "no replacement joined: \(faulted.output.stdout.suffix(1500))")
        #expect(clean.weights.count == 3 && faulted.weights.count == 3, "three members finish each run")
        // Members of one run agree bit for bit; the two runs differ by rounding only.
        for run in [clean, faulted] { #expect(Set(run.done.compactMap { $0["params_hash"] as? String }).count == 1, "\(run.done)") }
        let reference = try #require(clean.weights.first), weights = try #require(faulted.weights.first)
        let difference = FinalWeights.relativeDifference(weights, reference)
        print("\(example): weights \(difference) relative, held-out loss \(faulted.done.first?["test_loss"] ?? "?") vs \(clean.done.first?["test_loss"] ?? "?"), accuracy \(faulted.done.first?["accuracy"] ?? "?") vs \(clean.done.first?["accuracy"] ?? "?")")
        #expect(difference < 1e-3, "\(example): the faulted run's weights differ by \(difference) (relative) from the fault-free run's")
        let cleanLoss = try #require(clean.done.first?["test_loss"] as? Double), faultedLoss = try #require(faulted.done.first?["test_loss"] as? Double)
        #expect(abs(faultedLoss - cleanLoss) <= 0.01 * cleanLoss, "\(example): held-out loss \(faultedLoss) against \(cleanLoss)")
        let cleanAccuracy = try #require(clean.done.first?["accuracy"] as? Double), faultedAccuracy = try #require(faulted.done.first?["accuracy"] as? Double)
        #expect(abs(faultedAccuracy - cleanAccuracy) <= 0.01, "\(example): held-out accuracy \(faultedAccuracy) against \(cleanAccuracy)")
        #expect(faulted.done.allSatisfy { $0["overlap"] as? Bool == true } && clean.done.allSatisfy { $0["overlap"] as? Bool == false })
        if example == "TinyGPT" {
            let sample = try #require(faulted.done.first { $0["sample"] != nil }?["sample"] as? String)
            #expect(sample.hasPrefix("ROMEO:\n") && sample.count == "ROMEO:\n".count + 60, "\(sample)")
        }
    }
}
