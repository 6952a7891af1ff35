import ArgumentParser

/// `phalanx-bench`: Phalanx's benchmarks. Each one measures our code and a baseline side by
/// side in the same run and reports the ratio.
@main
struct PhalanxBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "phalanx-bench",
        abstract: "Benchmarks that compare Phalanx against a baseline measured in the same run.",
        subcommands: [KernelsCommand.self, MetricsCommand.self, ModelsCommand.self, AllReduceCommand.self, ProtectionCommand.self, CheckpointCommand.self, RecoveryCommand.self, ScalingCommand.self, SimulateCommand.self, ChaosCommand.self, AllReduceWorkerCommand.self, TrainWorkerCommand.self]
    )
}
