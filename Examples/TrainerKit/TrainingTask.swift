import Phalanx

/// What an example provides: its data and its model. The trainer does the rest (launch modes,
/// the loop, checkpoints, telemetry, fault injection).
public struct TrainingTask {
    /// A name for logs and plots.
    public var name: String
    /// The training data.
    public var train: InMemoryDataset
    /// Held-out data for the final accuracy (nil: none).
    public var test: InMemoryDataset?
    /// Makes a fresh model (the same on every member: same seed).
    public var makeModel: () throws -> Sequential
    /// Steps to train when neither `--steps` nor `--epochs` is given (nil: 30 epochs).
    public var defaultSteps: Int?
    /// What the trained model shows at the end (TinyGPT: a generated text), printed by the
    /// first member and put in the `done` event as `sample`; nil: nothing.
    public var sample: ((Sequential) throws -> String)?

    /// Makes a task.
    public init(
        name: String, train: InMemoryDataset, test: InMemoryDataset?, defaultSteps: Int? = nil, sample: ((Sequential) throws -> String)? = nil, makeModel: @escaping () throws -> Sequential
    ) {
        self.name = name
        self.train = train
        self.test = test
        self.defaultSteps = defaultSteps
        self.sample = sample
        self.makeModel = makeModel
    }
}
