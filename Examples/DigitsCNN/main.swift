// DigitsCNN: a small convolutional network on the UCI handwritten digits shipped with Phalanx
// (8×8 pixels, 10 classes). It runs in every launch mode DigitsMLP does:
//
//   DigitsCNN                                        # one process
//   mpirun -np 4 DigitsCNN                           # Open MPI collectives
//   phalanx-run --nproc 4 -- DigitsCNN --kill-rank 2 --at-step 300   # elastic, failed workers replaced
//
// The model: two 3×3 convolutions (with ReLU and 2×2 max pooling), then two linear layers.
import ArgumentParser
import Phalanx
import TrainerKit

@main
struct DigitsCNN: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train a two-convolution network on the shipped UCI digits.")

    @OptionGroup var trainer: TrainerOptions
    @Option(help: "Channels of the first convolution (the second has twice as many).")
    var channels = 16
    @Option(help: "Width of the hidden linear layer.")
    var hidden = 64

    func run() throws {
        let digits = try DigitsDataset.load()                                   // 1797 samples, 64 features
        let (train, test) = try digits.split(trainFraction: 0.8, seed: trainer.seed)
        let task = TrainingTask(name: "DigitsCNN", train: train, test: test) { [channels, hidden, seed = trainer.seed] in
            try Sequential([
                Reshape([1, 8, 8]),
                Conv2d(1, channels, kernel: 3, padding: 1), ReLU(), MaxPool2d(kernel: 2),              // → [c, 4, 4]
                Conv2d(channels, 2 * channels, kernel: 3, padding: 1), ReLU(), MaxPool2d(kernel: 2),   // → [2c, 2, 2]
                Flatten(), Linear(2 * channels * 4, hidden), ReLU(), Linear(hidden, 10),
            ], seed: seed)
        }
        Trainer.main(task, trainer)
    }
}
