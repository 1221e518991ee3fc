import FlowCore

/// How a step's gradient is computed by the workers and combined across workers and ranks. One mode per run,
/// chosen from the configuration and ``TrainerOptions`` (``init(reproducible:worldSize:overlap:shardOptimizer:)``).
public enum GradientExchangeMode: String, Sendable, CaseIterable {
    /// Sum over workers, then one blocking allreduce of the flat gradient (``BlockingAllreduceExchange``).
    case blockingAllreduce = "blocking-allreduce"
    /// One bucket per transform, each allreduced as soon as every worker's backward pass has finished it
    /// (``OverlappedBucketExchange``).
    case overlappedBuckets = "overlapped-buckets"
    /// Reduce-scatter, each rank updating 1/R of the parameters, allgather of θ (``ShardedOptimizerExchange``).
    case shardedOptimizer = "sharded-optimizer"
    /// Exact fixed-point sums over layout-independent micro-batches (``FixedPointExchange``).
    case exactFixedPoint = "exact-fixed-point"

    /// The mode of a run: exact with `reproducible`; otherwise, with several ranks, overlapped when `overlap`,
    /// else sharded when `shardOptimizer`, else blocking. One rank needs no collective and uses the blocking mode.
    public init(reproducible: Bool, worldSize: Int, overlap: Bool, shardOptimizer: Bool) {
        if reproducible { self = .exactFixedPoint }
        else if worldSize > 1 && overlap { self = .overlappedBuckets }
        else if worldSize > 1 && shardOptimizer { self = .shardedOptimizer }
        else { self = .blockingAllreduce }
    }

    /// What the mode does across ranks, for the run's banner.
    public var summary: String {
        switch self {
        case .blockingAllreduce: return "allreduce after the backward pass"
        case .overlappedBuckets: return "allreduce overlapped with the backward pass"
        case .shardedOptimizer: return "reduce-scatter after the backward pass, sharded optimiser"
        case .exactFixedPoint: return "exact fixed-point allreduce"
        }
    }
}

/// The gradient of one step as the optimiser reads it: `gradient` (+ `second` when given) times `scale` is the mean
/// gradient over the global batch, on the elements `owned` (all of them unless the optimiser is sharded).
struct ReducedGradient {
    /// The summed gradient `[storageCount]` (valid on `owned`).
    var gradient: UnsafeMutablePointer<Float>
    /// A second buffer the optimiser adds element-wise (two workers, one rank), or nil.
    var second: UnsafeMutablePointer<Float>?
    /// gradient · scale is the mean over the batch (1/n, or 1 after the exact mode's decoding).
    var scale: Double
    /// The elements whose update this rank computes.
    var owned: Range<Int>
    /// Whether a non-finite value was flagged while reducing (exact mode), or in the batch's statistics.
    var nonFinite: Bool
    /// Where a flagged non-finite value appeared, when the gradient's norms cannot tell (batch statistics).
    var nonFiniteLocation: String? = nil
}

/// One way of turning the workers' forward and backward passes into the same reduced gradient on every rank.
///
/// A step calls ``computeGradient()`` (the workers' passes on the rows in the group's ``StepContext`` and every
/// collective of the gradient), then the ``OptimizerStep`` runs on the result, calling
/// ``combineNormPartials(_:)`` before it reads the per-tensor norms and ``completeUpdate()`` after Adam. Every rank
/// calls the same methods in the same order (they are collective).
protocol GradientExchange: AnyObject {
    /// Which mode this is.
    var mode: GradientExchangeMode { get }
    /// Runs forward and backward on every worker and combines the gradients across workers and ranks.
    /// - Throws: ``CommunicatorError``.
    func computeGradient() throws -> ReducedGradient
    /// Sums the optimiser's per-tensor partial norms across ranks when each rank holds only its own part.
    /// - Throws: ``CommunicatorError``.
    func combineNormPartials(_ partials: UnsafeMutableBufferPointer<Double>) throws
    /// After the optimiser's update of the owned elements: makes θ complete on every rank.
    /// - Throws: ``CommunicatorError``.
    func completeUpdate() throws
    /// Makes Adam's moments complete on every rank (collective; before a checkpoint is written).
    /// - Throws: ``CommunicatorError``.
    func synchronizeOptimizerState(_ optimizer: AdamState<Float>) throws
    /// Whether Adam's moments are complete on this rank (false after sharded steps, until synchronised).
    var optimizerStateComplete: Bool { get }
}

extension GradientExchange {
    func combineNormPartials(_ partials: UnsafeMutableBufferPointer<Double>) throws {}
    func completeUpdate() throws {}
    func synchronizeOptimizerState(_ optimizer: AdamState<Float>) throws {}
    var optimizerStateComplete: Bool { true }
}

/// Makes the exchange of `mode` on `group`.
func makeGradientExchange(_ mode: GradientExchangeMode, group: WorkerGroup, configuration: TrainingConfiguration) -> any GradientExchange {
    switch mode {
    case .blockingAllreduce: return BlockingAllreduceExchange(group: group)
    case .overlappedBuckets: return OverlappedBucketExchange(group: group)
    case .shardedOptimizer: return ShardedOptimizerExchange(group: group)
    case .exactFixedPoint: return FixedPointExchange(group: group, microBatch: configuration.microBatch)
    }
}
