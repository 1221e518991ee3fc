/// Everything a checkpoint restores to continue training exactly where it stopped.
public struct TrainingState: Sendable, Equatable {
    /// Flat parameters `[storageCount]`.
    public var parameters: [Float]
    /// Adam's first moments `[storageCount]`.
    public var firstMoment: [Float]
    /// Adam's second moments `[storageCount]`.
    public var secondMoment: [Float]
    /// Updates Adam has applied (t).
    public var optimizerStep: Int
    /// Batches processed (applied or skipped): the position in the data stream.
    public var step: Int
    /// The data normaliser of the model.
    public var normalizer: Normalizer<Float>
    /// The context normaliser `[K]` of a conditional model (nil for an unconditional one).
    public var contextNormalizer: Normalizer<Float>?
    /// Best validation NLL so far (nats, data units).
    public var bestValidationNLL: Double?
    /// The epoch (1-based) at which ``bestValidationNLL`` was reached.
    public var bestEpoch: Int?
    /// The parameters' moving average θ̄ `[storageCount]` (``ParameterAverage``), when the run keeps one.
    public var averagedParameters: [Float]?
    /// The step of the average's last update (``ParameterAverage/lastStep``).
    public var averageStep: Int
    /// The running sums of the epoch in progress (zero at an epoch's end), so that a run resumed mid-epoch
    /// reports that epoch's training NLL over all its steps.
    public var epochProgress: EpochProgress
    /// Non-finite steps in a row just before this state (the non-finite policy's count, so that a resumed run
    /// stops after the same step as an uninterrupted one).
    public var nonFiniteStreak: Int

    /// A state.
    public init(parameters: [Float], firstMoment: [Float], secondMoment: [Float], optimizerStep: Int, step: Int,
                normalizer: Normalizer<Float>, bestValidationNLL: Double? = nil, bestEpoch: Int? = nil,
                averagedParameters: [Float]? = nil, averageStep: Int = 0, epochProgress: EpochProgress = EpochProgress(),
                nonFiniteStreak: Int = 0, contextNormalizer: Normalizer<Float>? = nil) {
        self.contextNormalizer = contextNormalizer
        self.parameters = parameters
        self.firstMoment = firstMoment
        self.secondMoment = secondMoment
        self.optimizerStep = optimizerStep
        self.step = step
        self.normalizer = normalizer
        self.bestValidationNLL = bestValidationNLL
        self.bestEpoch = bestEpoch
        self.averagedParameters = averagedParameters
        self.averageStep = averageStep
        self.epochProgress = epochProgress
        self.nonFiniteStreak = nonFiniteStreak
    }
}

/// Running sums over the steps of the epoch in progress.
public struct EpochProgress: Sendable, Equatable {
    /// Σ over the epoch's counted steps of (mean NLL of the step, nats, data units) × (its rows).
    public var nllRowSum: Double
    /// Rows of the counted steps (steps whose NLL was finite or that were applied).
    public var rows: Int
    /// Steps skipped by the non-finite policy.
    public var skippedSteps: Int
    /// Wall-clock seconds spent in the epoch's steps so far.
    public var seconds: Double

    /// Zero sums (the start of an epoch).
    public init(nllRowSum: Double = 0, rows: Int = 0, skippedSteps: Int = 0, seconds: Double = 0) {
        self.nllRowSum = nllRowSum
        self.rows = rows
        self.skippedSteps = skippedSteps
        self.seconds = seconds
    }

    /// Whether nothing has been summed yet.
    public var isEmpty: Bool { rows == 0 && skippedSteps == 0 && seconds == 0 && nllRowSum == 0 }
}
