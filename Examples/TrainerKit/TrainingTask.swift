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

    /// Makes a task.
    public init(name: String, train: InMemoryDataset, test: InMemoryDataset?, makeModel: @escaping () throws -> Sequential) {
        self.name = name
        self.train = train
        self.test = test
        self.makeModel = makeModel
    }
}
