/// The outcome of one optimiser step, identical on every rank.
public struct StepReport: Sendable {
    /// Global step index (0-based; counts every batch, applied or skipped).
    public var step: Int
    /// Epoch (0-based) and batch within it.
    public var epoch: Int, batch: Int
    /// Batches per epoch.
    public var batchesPerEpoch: Int
    /// Rows in this global batch.
    public var rows: Int
    /// Mean NLL over the batch (nats, data units); NaN or ±inf when the step was not finite.
    public var nll: Double
    /// L2 penalty λ·Σ‖W‖² before the update (nats).
    public var penalty: Double
    /// Global gradient norm before clipping (after division by the batch size, penalty included).
    public var gradientNorm: Double
    /// Learning rate used.
    public var learningRate: Double
    /// Whether the update was applied (false: skipped because not finite).
    public var applied: Bool
    /// Wall-clock seconds of the step on this rank.
    public var seconds: Double
}

/// Per-epoch results, identical on every rank (timings are this rank's).
public struct EpochReport: Sendable {
    /// Epoch index (1-based: the number of completed epochs).
    public var epoch: Int
    /// Mean training NLL over the epoch's rows as computed during the steps (nats, data units).
    public var trainNLL: Double
    /// Mean validation NLL at the end of the epoch (nats, data units), nil without a validation split.
    public var validationNLL: Double?
    /// L2 penalty at the end of the epoch (nats).
    public var penalty: Double
    /// Wall-clock seconds of the epoch's training steps.
    public var seconds: Double
    /// Training throughput (rows per second over all ranks).
    public var samplesPerSecond: Double
    /// Steps skipped for non-finite values in this epoch.
    public var skippedSteps: Int
    /// Wall-clock seconds of the validation pass after the epoch's steps (0 without a validation split).
    public var validationSeconds = 0.0
}

/// Cumulative wall-clock seconds per phase of the training step on this rank.
public struct StepTimings: Sendable {
    /// Gathering rows, forward and backward on the workers.
    public var compute = 0.0
    /// Summing the workers' gradients (and, in exact mode, the fixed-point conversion).
    public var intraNodeReduction = 0.0
    /// Allreduce across ranks (blocking time on the coordinating thread).
    public var allreduce = 0.0
    /// Division, penalty, clipping and Adam.
    public var optimizer = 0.0
    /// Steps timed.
    public var steps = 0
    public init() {}
}

/// Why training stopped early.
public struct TrainingStopped: Error, CustomStringConvertible, Sendable {
    /// The explanation.
    public var message: String
    public var description: String { message }
    /// An explanation of why training stopped.
    public init(message: String) { self.message = message }
}
