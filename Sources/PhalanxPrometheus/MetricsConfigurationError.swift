/// A metrics setting that cannot be used.
public struct MetricsConfigurationError: Error, CustomStringConvertible, Sendable {
    /// What is wrong.
    public let message: String
    /// The message.
    public var description: String { message }
}
