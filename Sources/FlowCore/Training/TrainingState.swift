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
    /// Best validation NLL so far (nats, data units).
    public var bestValidationNLL: Double?
    /// The epoch (1-based) at which ``bestValidationNLL`` was reached.
    public var bestEpoch: Int?
    /// The parameters' moving average θ̄ `[storageCount]` (``ParameterAverage``), when the run keeps one.
    public var averagedParameters: [Float]?
    /// The step of the average's last update (``ParameterAverage/lastStep``).
    public var averageStep: Int

    /// A state.
    public init(parameters: [Float], firstMoment: [Float], secondMoment: [Float], optimizerStep: Int, step: Int,
                normalizer: Normalizer<Float>, bestValidationNLL: Double? = nil, bestEpoch: Int? = nil,
                averagedParameters: [Float]? = nil, averageStep: Int = 0) {
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
    }
}
