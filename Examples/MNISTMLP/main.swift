// MNISTMLP: a 784 → 512 → 512 → 10 MLP on MNIST, for users who have the IDX files
// (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
// t10k-labels-idx1-ubyte, uncompressed) in one directory:
//
//   MNISTMLP --data ~/mnist --epochs 5 --batch-size 256
//   phalanx-run --nproc 4 -- MNISTMLP --data ~/mnist
//
// Launch modes, checkpoints, telemetry and fault injection as in DigitsMLP (TrainerKit).
import ArgumentParser
import Phalanx
import TrainerKit

@main
struct MNISTMLP: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train an MLP on MNIST (IDX files).")

    @OptionGroup var trainer: TrainerOptions
    @Option(help: "Directory with the four MNIST IDX files.")
    var data: String
    @Option(help: "Hidden layer width (two hidden layers).")
    var hidden = 512

    func run() throws {
        let train = try MNISTLoader.load(imagesPath: "\(data)/train-images-idx3-ubyte", labelsPath: "\(data)/train-labels-idx1-ubyte")
        let test = try MNISTLoader.load(imagesPath: "\(data)/t10k-images-idx3-ubyte", labelsPath: "\(data)/t10k-labels-idx1-ubyte")
        let task = TrainingTask(name: "MNISTMLP", train: train, test: test) { [hidden, seed = trainer.seed] in
            try Sequential([Linear(784, hidden), ReLU(), Linear(hidden, hidden), ReLU(), Linear(hidden, 10)], seed: seed)
        }
        Trainer.main(task, trainer)
    }
}
