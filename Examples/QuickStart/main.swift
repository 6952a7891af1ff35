// QuickStart: the README's "use it in your own trainer" example, compiled with the package so it
// cannot rot. Run it with `phalanx-run --nproc 4 -- .build/release/QuickStart`.
import Phalanx
import PhalanxElastic

let data = try DigitsDataset.load()                                  // or your InMemoryDataset
let model = try Sequential([Linear(64, 128), ReLU(), Linear(128, 10)], seed: 1)
let optimizer = try AdamW(layout: model.store.layout, learningRate: 3e-3)
let sampler = try GlobalBatchSampler(datasetSize: data.count, globalBatchSize: 64, seed: 1)

let member = try ElasticMember.start()                               // reads PHALANX_*, torchrun, OMPI or Slurm variables
let state = ElasticState(model: model, optimizer: optimizer, policy: .inPlace)
member.onMembershipChange = { change in print(change.summary) }      // rescale the LR here if you like
try member.run(state: state, until: 30 * sampler.stepsPerEpoch) { step in
    // This member's slice of the step's fixed global batch: no sample lost or repeated when members change.
    let indices = try sampler.indices(step: step.index, position: step.rank, members: step.worldSize)
    let (x, labels) = try data.batch(indices)
    let loss = try softmaxCrossEntropy(logits: try model.forward(x), labels: labels,
                                       normalizer: sampler.globalBatchCount(step: step.index))
    try model.backward(loss.gradient)                                // gradients into one flat buffer
    try step.communicator.allReduce(model.store.gradients)           // sum over members, in place
    try optimizer.step(model.store)                                  // update after the all-reduce
}
print("member \(member.id) finished \(state.step) steps")
member.shutdown()
