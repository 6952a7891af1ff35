// SyntheticMLP: throughput runs with a model of any size on generated data (Gaussian features,
// labels from a fixed random linear map, so the loss does go down):
//
//   SyntheticMLP --features 1024 --hidden 4096 --layers 3 --steps 200 --batch-size 512
//   mpirun -np 4 SyntheticMLP --hidden 2048        # compare with: phalanx-run --nproc 4 -- SyntheticMLP --hidden 2048
//
// Launch modes, checkpoints, telemetry and fault injection as in DigitsMLP (TrainerKit).
import ArgumentParser
import Phalanx
import TrainerKit

@main
struct SyntheticMLP: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train an MLP of configurable size on synthetic data.")

    @OptionGroup var trainer: TrainerOptions
    @Option(help: "Input features.")
    var features = 256
    @Option(help: "Hidden layer width.")
    var hidden = 512
    @Option(help: "Hidden layers.")
    var layers = 2
    @Option(help: "Training samples generated (plus 1/8 as many held out).")
    var samples = 8192

    func run() throws {
        let all = try SyntheticDataset.make(samples: samples + samples / 8, features: features, seed: 7)
        let (train, test) = try all.split(trainFraction: Double(samples) / Double(all.count), seed: 7)
        let task = TrainingTask(name: "SyntheticMLP", train: train, test: test) { [features, hidden, layers, seed = trainer.seed] in
            var stack: [any Layer] = [Linear(features, hidden), ReLU()]
            for _ in 1..<max(layers, 1) { stack += [Linear(hidden, hidden), ReLU()] }
            return try Sequential(stack + [Linear(hidden, 10)], seed: seed)
        }
        Trainer.main(task, trainer)
    }
}
