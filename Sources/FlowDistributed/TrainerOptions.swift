/// How one run of a ``DataParallelTrainer`` behaves beyond its ``TrainingConfiguration``: settings the checkpoint
/// does not record (they may differ when a run is resumed, and none changes the model's arithmetic except as
/// documented) and the tool's hooks. Given to the trainer's `init`; fixed afterwards.
public struct TrainerOptions: Sendable {
    /// Overlap the gradient allreduce with the backward pass (default mode, several ranks): one bucket per
    /// transform with parameters, each allreduced with MPI_Iallreduce as soon as every worker's backward pass has
    /// finished it. nil: on when the ranks span several hosts; off when they share one, where the transfer is
    /// memory copies by the same cores that compute, so overlapping hides nothing and costs more than one
    /// blocking allreduce (BENCHMARKS.md, §3).
    public var overlapAllreduce: Bool?
    /// Shard the optimiser step over the ranks (ZeRO stage 1, Rajbhandari et al., SC 2020; PyTorch's
    /// `ZeroRedundancyOptimizer`) when the allreduce is not overlapped: a reduce-scatter gives each rank the summed
    /// gradient of its 1/R of the parameters, each rank applies Adam to that part only, and an allgather of θ
    /// completes every replica. The same bytes move as in an allreduce, and each rank's optimiser pass shrinks
    /// R-fold. Adam's moments are then current only on their own rank's part until
    /// ``DataParallelTrainer/synchronizeOptimizerState()`` gathers them (before every checkpoint). Default on.
    public var shardOptimizer: Bool
    /// Compare a checksum of the parameters across ranks every this many steps (0 = never).
    public var parameterCheckInterval: Int
    /// Validate every this many epochs (≥ 1; Keras's `validation_freq`) and after the run's last epoch; the other
    /// epochs report no validation NLL. Training itself (and so every byte of the model) does not depend on it.
    public var validationInterval: Int
    /// Whether this rank wants to stop (e.g. a signal arrived), asked once per step with the step's index (from
    /// 0) and combined across ranks with the step's loss statistics, so that every rank stops after the same step.
    public var stopRequest: @Sendable (_ step: Int) -> Bool
    /// Test-only fault injection; nil in normal use.
    public var faults: FaultHooks?

    /// Options; the defaults are `train`'s.
    public init(overlapAllreduce: Bool? = nil, shardOptimizer: Bool = true, parameterCheckInterval: Int = 0,
                validationInterval: Int = 1,
                stopRequest: @escaping @Sendable (_ step: Int) -> Bool = { _ in false }, faults: FaultHooks? = nil) {
        precondition(validationInterval >= 1, "validationInterval: need at least 1")
        self.validationInterval = validationInterval
        self.overlapAllreduce = overlapAllreduce
        self.shardOptimizer = shardOptimizer
        self.parameterCheckInterval = parameterCheckInterval
        self.stopRequest = stopRequest
        self.faults = faults
    }
}

/// Hooks through which fault tests break a run on purpose (`FLOW_TEST_FAULT`, see the tool's FaultInjection).
public struct FaultHooks: Sendable {
    /// Called with the step index before the optimiser; true poisons that step's gradient with NaN (to test the
    /// non-finite policy).
    public var poisonGradient: @Sendable (_ step: Int) -> Bool

    /// Hooks with `poisonGradient`.
    public init(poisonGradient: @escaping @Sendable (_ step: Int) -> Bool) { self.poisonGradient = poisonGradient }
}
