import PhalanxNN
import PhalanxTensor
import Testing

@Suite struct ScheduleAndClippingTests {
    @Test func schedules() {
        let step = StepDecay(base: 1, stepSize: 10, gamma: 0.5)
        #expect([0, 9, 10, 25].map(step.learningRate(atStep:)) == [1, 1, 0.5, 0.25])
        let cosine = CosineDecay(base: 1, totalSteps: 100, minimum: 0.1)
        #expect(cosine.learningRate(atStep: 0) == 1)
        #expect(abs(cosine.learningRate(atStep: 50) - 0.55) < 1e-6)
        #expect(abs(cosine.learningRate(atStep: 100) - 0.1) < 1e-6)
        #expect(abs(cosine.learningRate(atStep: 500) - 0.1) < 1e-6)
        let warm = LinearWarmup(warmupSteps: 4, then: ConstantLearningRate(0.8))
        #expect([0, 1, 3, 4, 9].map(warm.learningRate(atStep:)) == [0.2, 0.4, 0.8, 0.8, 0.8])
        #expect(LinearWarmup(warmupSteps: 0, then: ConstantLearningRate(0.3)).learningRate(atStep: 0) == 0.3)
        let warmCosine = LinearWarmup(warmupSteps: 10, then: cosine)
        #expect(abs(warmCosine.learningRate(atStep: 4) - cosine.learningRate(atStep: 4) * 0.5) < 1e-7)
    }

    @Test func clipByGlobalNorm() throws {
        var g: [Float] = [3, 4]
        let norm = try g.withUnsafeMutableBufferPointer { try GradientClipping.clipByGlobalNorm($0, maxNorm: 1) }
        #expect(norm == 5)
        #expect(abs(g[0] - 0.6) < 1e-6 && abs(g[1] - 0.8) < 1e-6)
        var small: [Float] = [0.3, 0.4]
        _ = try small.withUnsafeMutableBufferPointer { try GradientClipping.clipByGlobalNorm($0, maxNorm: 1) }
        #expect(small == [0.3, 0.4])
        #expect(throws: NNError.self) { try small.withUnsafeMutableBufferPointer { try GradientClipping.clipByGlobalNorm($0, maxNorm: -1) } }
        #expect(throws: NNError.self) { try small.withUnsafeMutableBufferPointer { try GradientClipping.clipByGlobalNorm($0, maxNorm: .nan) } }
    }
}
