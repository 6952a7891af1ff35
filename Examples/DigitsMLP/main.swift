// DigitsMLP: a small MLP on the UCI handwritten digits shipped with Phalanx (8×8 pixels, 10
// classes). The same program runs alone, on a static ring (TCP or MPI) or as an elastic job:
//
//   DigitsMLP                                        # one process
//   mpirun -np 4 DigitsMLP                           # Open MPI collectives
//   mpirun --enable-recovery -np 4 -x PHALANX_JOB_SECRET=… DigitsMLP --elastic --kill-rank 2 --at-step 300
//   phalanx-run --nproc 4 -- DigitsMLP --kill-rank 2 --at-step 300   # elastic, failed workers replaced
//
// All the training machinery (data slices per member, the all-reduce, checkpoints, telemetry,
// fault injection) is in TrainerKit; this file only says what to train.
import ArgumentParser
import Phalanx
import TrainerKit

@main
struct DigitsMLP: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train a 64 → hidden → 10 MLP on the shipped UCI digits.")

    @OptionGroup var trainer: TrainerOptions
    @Option(help: "Hidden layer width.")
    var hidden = 128

    func run() throws {
        let digits = try DigitsDataset.load()                                   // 1797 samples, 64 features
        let (train, test) = try digits.split(trainFraction: 0.8, seed: trainer.seed)
        let task = TrainingTask(name: "DigitsMLP", train: train, test: test) { [hidden, seed = trainer.seed] in
            try Sequential([Linear(64, hidden), ReLU(), Linear(hidden, 10)], seed: seed)
        }
        Trainer.main(task, trainer)
    }
}
