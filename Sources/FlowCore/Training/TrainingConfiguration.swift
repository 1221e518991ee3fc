/// What to do when a step's loss or gradient is not finite.
public enum NonFinitePolicy: String, Codable, Hashable, Sendable, CaseIterable {
    /// Skip the update (parameters and optimiser state untouched); stop after 3 consecutive such steps.
    case skip
    /// Stop training at the first such step.
    case stop
}

/// Everything that determines the trained model's bytes, besides the data: model shape, optimiser,
/// schedule, batch, seed and reduction mode. Stored in the checkpoint (`__metadata__["training"]`) and
/// hashed across ranks at start-up.
public struct TrainingConfiguration: Codable, Hashable, Sendable {
    /// The model.
    public var model: FlowConfiguration
    /// Passes over the training split.
    public var epochs: Int
    /// Global batch size B (rows per optimiser step across all ranks and threads).
    public var batchSize: Int
    /// Base learning rate.
    public var learningRate: Double
    /// L2 penalty λ on dense weight matrices (0 = off; the seed trained without it).
    public var l2: Double
    /// Adam's hyper-parameters.
    public var adam: AdamConfiguration
    /// Learning-rate schedule.
    public var schedule: LearningRateSchedule
    /// Clip the global gradient norm to this value (nil = no clipping).
    public var clipNorm: Double?
    /// The seed of every random quantity (initialisation, split, shuffling, dequantisation).
    public var seed: UInt64
    /// Fraction of rows held out for validation (0 ≤ f < 1).
    public var validationFraction: Double
    /// Exact mode: the checkpoint is byte-identical for every ranks × threads layout.
    public var reproducible: Bool
    /// Rows per micro-batch in exact mode.
    public var microBatch: Int
    /// Reaction to a non-finite loss or gradient.
    public var onNonFinite: NonFinitePolicy
    /// Momentum μ of the exponential moving average of the parameters that is evaluated, sampled and saved as
    /// the model (Polyak & Juditsky 1992; Keras's `use_ema=True, ema_momentum=μ`); nil = off, the model is the
    /// trained parameters themselves. Training itself (the optimiser's trajectory) is the same either way.
    /// The average is updated every ``ParameterAverage/interval`` steps and at each epoch's end with momentum
    /// μʲ for the j steps since its last update: the time constant stays 1/(1 − μ) steps.
    public var emaMomentum: Double?

    /// The seed's setup: 300 epochs, batch 256, Adam lr 1e-4, no L2, 20% validation, no parameter average
    /// (the command-line tool adds `emaMomentum` 0.99).
    public init(
        model: FlowConfiguration = .seed(), epochs: Int = 300, batchSize: Int = 256, learningRate: Double = 1e-4,
        l2: Double = 0, adam: AdamConfiguration = AdamConfiguration(), schedule: LearningRateSchedule = .constant,
        clipNorm: Double? = nil, seed: UInt64 = 0, validationFraction: Double = 0.2, reproducible: Bool = false,
        microBatch: Int = 64, onNonFinite: NonFinitePolicy = .skip, emaMomentum: Double? = nil
    ) {
        self.model = model
        self.epochs = epochs
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.l2 = l2
        self.adam = adam
        self.schedule = schedule
        self.clipNorm = clipNorm
        self.seed = seed
        self.validationFraction = validationFraction
        self.reproducible = reproducible
        self.microBatch = microBatch
        self.onNonFinite = onNonFinite
        self.emaMomentum = emaMomentum
    }

    /// Checks every field.
    /// - Throws: ``FlowConfigurationError`` naming the flag and the value.
    public func validate() throws {
        try model.validate()
        func fail(_ field: String, _ message: String) throws -> Never {
            throw FlowConfigurationError(field: field, message: message)
        }
        func fail(_ field: String, _ value: String, _ message: String) throws -> Never {
            throw FlowConfigurationError(field: field, value: value, message: message)
        }
        if epochs < 1 { try fail("epochs", "\(epochs)", "need at least 1 epoch") }
        if batchSize < 1 { try fail("batch-size", "\(batchSize)", "need at least 1 row per batch") }
        if !(learningRate > 0) || !learningRate.isFinite { try fail("lr", "\(learningRate)", "the learning rate must be a positive number") }
        if !(l2 >= 0) || !l2.isFinite { try fail("l2", "\(l2)", "the penalty must be ≥ 0") }
        if let c = clipNorm, !(c > 0) || !c.isFinite { try fail("clip-norm", "\(c)", "must be a positive number") }
        if !(validationFraction >= 0 && validationFraction < 1) {
            try fail("validation-fraction", "\(validationFraction)", "must be in [0, 1)")
        }
        if let m = emaMomentum, !(m > 0 && m < 1) { try fail("ema-momentum", "\(m)", "must be in (0, 1); 0 turns the average off") }
        if microBatch < 1 { try fail("micro-batch", "\(microBatch)", "need at least 1 row") }
        if !(adam.beta1 >= 0 && adam.beta1 < 1) { try fail("beta1", "\(adam.beta1)", "must be in [0, 1)") }
        if !(adam.beta2 >= 0 && adam.beta2 < 1) { try fail("beta2", "\(adam.beta2)", "must be in [0, 1)") }
        if !(adam.epsilon > 0) { try fail("eps", "\(adam.epsilon)", "must be > 0") }
        if case let .cosine(warmup, total, minimum) = schedule {
            if warmup < 0 { try fail("warmup-steps", "\(warmup)", "must be 0 or more") }
            if total < 1 || !(minimum >= 0 && minimum <= 1) {
                try fail("schedule", "cosine(warmup \(warmup), total \(total), minimum \(minimum)) out of range")
            }
            if warmup > total {
                try fail("warmup-steps", "\(warmup)", "longer than the run's \(total) steps (epochs × steps per epoch): the rate would never reach its peak")
            }
        }
    }
}

extension TrainingConfiguration {
    /// Optimiser steps per epoch on a data set of `rows` rows: ⌈N / B⌉ with N the training split's rows
    /// (``DataSplit/trainingRows(_:validationFraction:)``); the last batch of an epoch may be partial.
    public func stepsPerEpoch(rows: Int) -> Int {
        Self.stepsPerEpoch(trainingRows: DataSplit.trainingRows(rows, validationFraction: validationFraction), batchSize: batchSize)
    }

    /// ⌈trainingRows / batchSize⌉: the one formula for steps per epoch (the trainer's and the cosine schedule's).
    public static func stepsPerEpoch(trainingRows: Int, batchSize: Int) -> Int { (trainingRows + batchSize - 1) / batchSize }
}
