// TinyGPT: a character-level transformer (GPT-style, pre-LayerNorm blocks of causal multi-head
// self-attention and a GELU MLP, with dropout) on the Shakespeare text shipped with Phalanx
// (public domain; see Sources/PhalanxData/Resources/TINYSHAKESPEARE.md). It prints a generated
// sample at the end, and runs in every launch mode DigitsMLP does:
//
//   TinyGPT                                          # one process
//   mpirun -np 4 TinyGPT                             # Open MPI collectives
//   phalanx-run --nproc 4 -- TinyGPT --kill-rank 2 --at-step 300   # elastic, failed workers replaced
import ArgumentParser
import Phalanx
import TrainerKit

@main
struct TinyGPT: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train a small character-level transformer on the shipped Shakespeare text and print a sample.")

    @OptionGroup var trainer: TrainerOptions
    @Option(help: "Characters of context (the sequence length).")
    var context = 64
    @Option(help: "Width of the model (embedding size).")
    var embed = 64
    @Option(help: "Attention heads per block.")
    var heads = 4
    @Option(help: "Transformer blocks.")
    var blocks = 2
    @Option(help: "Dropout probability (after the embeddings and in every block).")
    var dropout: Float = 0.1
    @Option(help: "Characters to generate at the end.")
    var sampleLength = 300
    @Option(help: "Sampling temperature (0: always the likeliest character).")
    var temperature: Float = 0.8
    @Option(help: "The text the sample continues.")
    var prompt = "ROMEO:\n"
    @Option(help: "Training windows start every N characters (default: --context, disjoint; overlapping below it). Held-out windows never overlap.")
    var stride: Int?
    @Option(help: "Use only the first N characters of the text (0: all of it; tests train on less).")
    var characters = 0

    func validate() throws {
        for (name, value) in [("--context", context), ("--embed", embed), ("--heads", heads), ("--blocks", blocks)] where value < 1 {
            throw ValidationError("\(name) must be at least 1, not \(value)")
        }
        guard embed % heads == 0 else { throw ValidationError("--embed \(embed) must split evenly into --heads \(heads)") }
        guard sampleLength >= 0, characters >= 0 else { throw ValidationError("--sample-length and --characters cannot be negative") }
        guard (stride ?? 1) >= 1 else { throw ValidationError("--stride must be at least 1") }
    }

    func run() throws {
        var corpus = try CharacterCorpus.shakespeare()
        if characters > 0 { corpus = try CharacterCorpus(text: corpus.decode(Array(corpus.ids.prefix(characters)))) }
        // The prompt is checked now, not after the whole run.
        do { _ = try corpus.encode(prompt) } catch { throw ValidationError("--prompt: \(error)") }
        let (train, test) = try corpus.split(length: context, trainFraction: 0.9, stride: stride)
        let generator = TextGenerator(corpus: corpus, context: context, temperature: temperature, seed: trainer.seed)
        let task = TrainingTask(
            name: "TinyGPT", train: train, test: test, defaultSteps: 600,
            sample: { [prompt, sampleLength] model in try generator.continuation(of: prompt, length: sampleLength, model: model) }
        ) { [corpus, context, embed, heads, blocks, dropout, seed = trainer.seed] in
            var layers: [any Layer] = [Embedding(corpus.vocabulary.count, embed), PositionalEmbedding(maxLength: context, dimension: embed), try Dropout(dropout, seed: seed &+ 1)]
            for block in 0..<blocks {
                let key = seed &+ UInt64(2 * block + 2)
                layers.append(Residual([LayerNorm(embed), SelfAttention(embed: embed, heads: heads, causal: true), try Dropout(dropout, seed: key)]))
                layers.append(Residual([LayerNorm(embed), Linear(embed, 4 * embed), GELU(), Linear(4 * embed, embed), try Dropout(dropout, seed: key &+ 1)]))
            }
            layers += [LayerNorm(embed), Linear(embed, corpus.vocabulary.count)]
            return try Sequential(layers, seed: seed)
        }
        Trainer.main(task, trainer)
    }
}
