#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A learning rate as a pure function of the (0-based) step: set `optimizer.learningRate`
/// from it before each step. Pure, so a resumed or re-sharded run gets the same rates.
public protocol LearningRateSchedule: Sendable {
    /// The learning rate for step `step` (0-based).
    func learningRate(atStep step: Int) -> Float
}

/// A constant rate.
public struct ConstantLearningRate: LearningRateSchedule {
    /// The rate.
    public var rate: Float
    /// Makes the schedule.
    public init(_ rate: Float) { self.rate = rate }
    /// Always `rate`.
    public func learningRate(atStep step: Int) -> Float { rate }
}

/// Multiplies the rate by `gamma` every `stepSize` steps: `base · gamma^⌊step / stepSize⌋`.
public struct StepDecay: LearningRateSchedule {
    /// The rate at step 0.
    public var base: Float
    /// Steps between decays (≥ 1).
    public var stepSize: Int
    /// The factor applied at each decay.
    public var gamma: Float
    /// Makes the schedule; a `stepSize` below 1 is treated as 1.
    public init(base: Float, stepSize: Int, gamma: Float) {
        self.base = base
        self.stepSize = max(stepSize, 1)
        self.gamma = gamma
    }
    /// `base · gamma^⌊step / stepSize⌋`.
    public func learningRate(atStep step: Int) -> Float {
        base * Float(pow(Double(gamma), Double(max(step, 0) / stepSize)))
    }
}

/// Cosine annealing from `base` to `minimum` over `totalSteps`, then `minimum`.
public struct CosineDecay: LearningRateSchedule {
    /// The rate at step 0.
    public var base: Float
    /// The rate at and after `totalSteps`.
    public var minimum: Float
    /// The length of the decay (≥ 1).
    public var totalSteps: Int
    /// Makes the schedule.
    public init(base: Float, totalSteps: Int, minimum: Float = 0) {
        self.base = base
        self.minimum = minimum
        self.totalSteps = max(totalSteps, 1)
    }
    /// `minimum + (base − minimum)·(1 + cos(π·step/totalSteps))/2`.
    public func learningRate(atStep step: Int) -> Float {
        let progress = Double(min(max(step, 0), totalSteps)) / Double(totalSteps)
        return minimum + (base - minimum) * Float((1 + cos(Double.pi * progress)) / 2)
    }
}

/// A linear warm-up over the first `warmupSteps` steps, then `schedule`:
/// `schedule(step) · (step + 1) / warmupSteps` while `step < warmupSteps`.
public struct LinearWarmup<Schedule: LearningRateSchedule>: LearningRateSchedule {
    /// The warm-up length.
    public var warmupSteps: Int
    /// The schedule scaled during warm-up and followed afterwards.
    public var schedule: Schedule
    /// Makes the schedule.
    public init(warmupSteps: Int, then schedule: Schedule) {
        self.warmupSteps = max(warmupSteps, 0)
        self.schedule = schedule
    }
    /// The warmed-up rate.
    public func learningRate(atStep step: Int) -> Float {
        let rate = schedule.learningRate(atStep: step)
        guard step < warmupSteps else { return rate }
        return rate * Float(max(step, 0) + 1) / Float(warmupSteps)
    }
}
