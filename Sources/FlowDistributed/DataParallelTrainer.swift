import FlowCore

/// Data-parallel RealNVP training on R ranks × T worker threads.
///
/// One step (see ``trainStep()``), data flowing one way:
/// 1. ``EpochData`` gives the step's rows of the global batch (the epoch's seeded permutation, the same on every
///    rank), divided by a ``ShardPlan``;
/// 2. the run's ``GradientExchangeMode`` (one ``GradientExchange`` type per mode) runs forward and backward on
///    every worker into its own gradient buffer and combines the gradients across workers (a fixed order) and
///    ranks (allreduce; overlapped buckets; reduce-scatter; or exact fixed-point sums with `reproducible`);
/// 3. one allreduce of the loss statistics and the stop request;
/// 4. the ``OptimizerStep``: the division by the true global batch size, the L2 penalty's gradient, the norm, the
///    non-finite policy (skip or stop), clipping and the identical Adam update on every rank; the parameter average
///    when due.
///
/// All buffers are allocated in `init`; a steady-state step allocates nothing on the heap (measured by
/// `flow-alloc-count` in the blocking and exact modes). An epoch's first step allocates its permutation (and, for
/// discrete data, the dequantised split).
public final class DataParallelTrainer: @unchecked Sendable {
    /// The run's configuration.
    public let configuration: TrainingConfiguration
    /// The model structure.
    public let network: FlowNetwork<Float>
    /// The ranks of the job.
    public let communicator: any Communicator
    /// This rank's workers.
    public let pool: WorkerPool
    /// The model's data normaliser (fitted on the training split).
    public let normalizer: Normalizer<Float>
    /// Flat parameters `[storageCount]`, identical on every rank.
    public let parameters: AlignedBuffer<Float>
    /// Adam's state.
    public var optimizer: AdamState<Float> { optimizerStep.optimizer }
    /// The moving average of the parameters (``TrainingConfiguration/emaMomentum``), identical on every rank.
    public let average: ParameterAverage?
    /// Batches processed so far (the data position).
    public internal(set) var step: Int
    /// Best validation NLL so far (nats, data units).
    public private(set) var bestValidationNLL: Double?
    /// The running sums of the epoch in progress (restored from a checkpoint written mid-epoch).
    public internal(set) var epochProgress = EpochProgress()
    /// The epoch (1-based) of ``bestValidationNLL``.
    public private(set) var bestEpoch: Int?
    /// Cumulative time per phase on this rank.
    public var timings: StepTimings {
        get { group.timings }
        set { group.timings = newValue }
    }
    /// The run's options (overlap, sharded optimiser, parameter checks, the stop request, fault hooks).
    public let options: TrainerOptions
    /// Set when some rank asked to stop during the last step: every rank sees it after the same step.
    public internal(set) var stopAgreed = false
    /// How this run's gradients are combined across workers and ranks.
    public var gradientExchange: GradientExchangeMode { exchange.mode }

    /// The training split `[N, D]` (after the preprocessing, in Float; the chain's first transform normalises it).
    public var trainData: AlignedBuffer<Float> { data.values }
    /// Number of training rows N.
    public var trainRows: Int { data.rows }
    /// The training split's epoch order and dequantisation.
    public let data: EpochData
    /// The validation split `[validationRows, D]` (like ``trainData``), if any.
    public let validationData: AlignedBuffer<Float>?
    /// Number of validation rows.
    public let validationRows: Int
    /// Sharded inference with this run's communicator and workers.
    public let evaluator: ShardedEvaluator
    /// Per-row log-det of the preprocessing of the validation rows.
    let validationPreLogDet: [Double]
    /// Where the last non-finite value appeared ("the gradient of couplings.3.t.2.weight (transform couplings.3)").
    public var lastNonFiniteLocation: String? { optimizerStep.lastNonFiniteLocation }
    /// The workers and the buffers a step's parallel regions share.
    let group: WorkerGroup
    /// The step's gradient computation and its collectives (one implementation per ``GradientExchangeMode``).
    let exchange: any GradientExchange
    /// Norms, the non-finite policy, clipping, Adam and the parameter average.
    let optimizerStep: OptimizerStep
    /// The loss statistics of a step (summed NLL, stop request), reused every step.
    var statsBuffer: [Double] = [0, 0]
    /// Whether the gradient allreduce overlaps the backward pass.
    public var overlapAllreduce: Bool { exchange.mode == .overlappedBuckets }
    /// Whether the optimiser step is sharded over the ranks.
    public var shardOptimizer: Bool { exchange.mode == .shardedOptimizer }

    /// Sets up training on `train` `[N, D]` (data units) with an optional `validation` split; for a conditional
    /// model (``FlowConfiguration/contextFeatures`` K > 0) the rows are [x, c] `[N, D + K]`, the context last.
    ///
    /// With a preprocessing (``Preprocessing/dequantizeLogit(levels:alpha:)``) the rows are discrete values;
    /// every epoch e draws fresh dequantisation noise (purpose `.dequantization`, substream e) for the training
    /// split, the validation split uses one fixed draw, and every reported NLL includes the preprocessing's
    /// per-row log-det.
    ///
    /// - Parameters:
    ///   - normalizer: the data normaliser (fitted by the caller on the preprocessed training split, epoch 0's
    ///     noise, identically on every rank).
    ///   - contextNormalizer: a conditional model's context normaliser `[K]` (fitted on the training split's context).
    ///   - threads: workers T on this rank.
    ///   - state: a checkpoint's state to resume from; nil starts from the seeded initialisation.
    ///   - options: how this run behaves beyond the configuration (``TrainerOptions``).
    /// - Throws: ``FlowConfigurationError`` for invalid settings or data of the wrong width.
    public init(
        configuration: TrainingConfiguration, normalizer: Normalizer<Float>, contextNormalizer: Normalizer<Float>? = nil,
        train: Matrix<Double>,
        validation: Matrix<Double>?, communicator: any Communicator, threads: Int, state: TrainingState? = nil,
        options: TrainerOptions = TrainerOptions()
    ) throws {
        try configuration.validate()
        let D = configuration.model.dim, W = configuration.model.inputWidth
        guard train.columns == W else {
            throw FlowConfigurationError(field: "data", message: "the data has \(train.columns) columns, the model expects "
                + (W == D ? "D = \(D)" : "D + K = \(D) + \(W - D) (features, then context)"))
        }
        guard train.rows >= 1 else { throw FlowConfigurationError(field: "data", message: "the training split is empty") }
        guard threads >= 1 else { throw FlowConfigurationError(field: "threads", message: "\(threads): need at least 1 worker thread") }
        guard threads <= WorkerPool.maximumCount else {
            throw FlowConfigurationError(field: "threads", message: "\(threads): at most \(WorkerPool.maximumCount) worker threads (libdispatch's thread limit on Linux)")
        }
        self.configuration = configuration
        self.network = try FlowNetwork(configuration.model, normalizer: normalizer, contextNormalizer: contextNormalizer)
        self.communicator = communicator
        self.pool = WorkerPool(count: threads)
        self.normalizer = normalizer
        let layout = network.layout
        let initial = AlignedBuffer(RealNVP<Float>.initialParameters(layout: layout, seed: configuration.seed))
        let data = EpochData(train: train, configuration: configuration)
        self.data = data
        if state == nil, network.hasDataDependentInitialization {
            // Glow's ActNorm initialisation on the first global batch (epoch 0's order and dequantisation), the same
            // rows and bits on every rank and in every layout.
            let batch = data.batch(forStep: 0)
            let rows = AlignedBuffer<Float>(count: batch.count * W)
            data.gather(batch, 0..<batch.count, into: rows.base)
            network.initializeActNorms(rows.base, rows: batch.count, parameters: initial.base)
        }
        parameters = initial
        let average = configuration.emaMomentum.map { ParameterAverage(momentum: $0, initial: initial.base, count: layout.storageCount) }
        self.average = average
        step = 0
        let preprocessing = configuration.model.preprocessing
        if let v = validation, v.rows > 0 {
            guard v.columns == W else {
                throw FlowConfigurationError(field: "data", message: "the validation data has \(v.columns) columns, expected \(W)")
            }
            let noise = preprocessing == .none ? nil
                : Preprocessing.noise(seed: configuration.seed, substream: Preprocessing.evaluationSubstream, rows: v.rows, dim: D)
            let (pre, ld) = try preprocessing.forward(rows: v, features: D, noise: noise)
            validationData = AlignedBuffer(pre.converted(to: Float.self).values)
            validationPreLogDet = ld
            validationRows = v.rows
        } else {
            validationData = nil
            validationPreLogDet = []
            validationRows = 0
        }
        // Workspaces sized for the largest pass any step of this run makes.
        let B = min(configuration.batchSize, train.rows)
        let R = communicator.worldSize
        let plan = ShardPlan(rows: B, ranks: R, threads: threads,
                             microBatch: configuration.reproducible ? configuration.microBatch : nil)
        let slotCount: Int
        if configuration.reproducible {
            let perRank = (plan.microBatchCount + R - 1) / R
            slotCount = max(1, (perRank + threads - 1) / threads)
        } else {
            slotCount = 0
        }
        let network = self.network
        let workers = (0..<threads).map { _ in
            WorkerState(network: network, capacity: plan.maxPassRows, storageCount: layout.storageCount,
                        slotCount: slotCount, tensorCount: layout.tensors.count)
        }
        evaluator = ShardedEvaluator(network: network, communicator: communicator, pool: pool)
        self.options = options
        // Batch normalisation: one row of statistics per pass (a global worker index, or a micro-batch in exact mode).
        var statistics: SyncBatchStatistics?
        if network.hasBatchStatistics {
            try Self.checkBatchStatisticsRows(network: network, rows: train.rows, batchSize: configuration.batchSize)
            // Ranks may run different numbers of workers: the slots of rank r are r·T_max ..< r·T_max + T_r.
            var most = [Int64(threads)]
            try most.withUnsafeMutableBufferPointer { try communicator.allreduceMax($0) }
            let stride = Int(most[0])
            statistics = SyncBatchStatistics(communicator: communicator, workers: threads,
                                             slots: configuration.reproducible ? max(1, plan.microBatchCount) : R * stride,
                                             slotStride: stride, width: network.batchStatisticsWidth,
                                             transforms: network.batchStatisticsTransformCount)
        }
        let group = WorkerGroup(network: network, communicator: communicator, pool: pool, data: data,
                                parameters: initial, workers: workers, batchStatistics: statistics)
        self.group = group
        // Batch normalisation's reductions run inside the backward pass on worker 0, which would interleave with the
        // overlapped buckets' collectives in an order that can differ between ranks: its runs do not overlap.
        let mode = GradientExchangeMode(reproducible: configuration.reproducible, worldSize: R,
                                        overlap: statistics == nil && (options.overlapAllreduce ?? (communicator.hostCount > 1)),
                                        shardOptimizer: options.shardOptimizer)
        exchange = makeGradientExchange(mode, group: group, configuration: configuration)
        optimizerStep = OptimizerStep(configuration: configuration, group: group, average: average)
        if let s = state { try restore(s) }
    }

    /// Batch statistics need at least two values per channel in every training batch (PyTorch refuses the same):
    /// with one, the variance is 0 and the log-det grows without bound. Checks the full and the last, partial batch.
    /// - Throws: ``FlowConfigurationError`` naming `--batch-size`.
    static func checkBatchStatisticsRows(network: FlowNetwork<Float>, rows: Int, batchSize: Int) throws {
        let B = min(batchSize, rows), last = rows % B == 0 ? B : rows % B, needed = network.batchStatisticsMinimumRows
        guard min(B, last) < needed else { return }
        throw FlowConfigurationError(field: "batch-size", value: "\(batchSize)",
            message: "batch normalisation needs more than one value per channel in every training batch, and a batch of \(min(B, last)) row\(min(B, last) == 1 ? "" : "s") "
                + (last < B ? "(the last of each epoch: \(rows) rows in batches of \(B)) " : "")
                + "has one at its smallest scale; need \(needed) rows or more (or ActNorm instead of --image-batch-norm)")
    }

    /// Restores parameters, optimiser state and position from a checkpoint's state.
    func restore(_ s: TrainingState) throws {
        let n = network.layout.storageCount
        guard s.parameters.count == n, s.firstMoment.count == n, s.secondMoment.count == n else {
            throw FlowConfigurationError(field: "resume", message: "the checkpoint holds \(s.parameters.count) parameters, this model has \(n)")
        }
        switch (average, s.averagedParameters) {
        case (nil, nil): break
        case (let a?, let values?):
            guard values.count == n else {
                throw FlowConfigurationError(field: "resume", message: "the checkpoint's parameter average holds \(values.count) values, this model has \(n)")
            }
            a.average.assign(values)
            a.lastStep = s.averageStep
        case (nil, _?):
            throw FlowConfigurationError(field: "resume", message: "the checkpoint keeps a parameter average (training.parameters.*) but this run has none (ema-momentum off)")
        case (_?, nil):
            throw FlowConfigurationError(field: "resume", message: "the checkpoint has no parameter average (training.average_step) but this run keeps one (ema-momentum \(configuration.emaMomentum!))")
        }
        parameters.assign(s.parameters)
        optimizer.m.assign(s.firstMoment)
        optimizer.v.assign(s.secondMoment)
        optimizer.step = s.optimizerStep
        step = s.step
        bestValidationNLL = s.bestValidationNLL
        bestEpoch = s.bestEpoch
        epochProgress = s.epochProgress
        optimizerStep.consecutiveNonFinite = s.nonFiniteStreak
    }

    /// Makes Adam's moments complete on every rank after sharded steps (an allgather of m and v; collective:
    /// every rank calls it at the same point). Call before ``state()`` is written into a checkpoint.
    /// - Throws: ``CommunicatorError``.
    public func synchronizeOptimizerState() throws {
        try exchange.synchronizeOptimizerState(optimizer)
    }

    /// The state to write into a checkpoint (after ``synchronizeOptimizerState()`` when the optimiser is sharded).
    public func state() -> TrainingState {
        precondition(exchange.optimizerStateComplete, "state(): call synchronizeOptimizerState() on every rank first")
        return TrainingState(parameters: parameters.array, firstMoment: optimizer.m.array, secondMoment: optimizer.v.array,
                      optimizerStep: optimizer.step, step: step, normalizer: normalizer,
                      bestValidationNLL: bestValidationNLL, bestEpoch: bestEpoch,
                      averagedParameters: average?.average.array, averageStep: average?.lastStep ?? 0,
                      epochProgress: epochProgress, nonFiniteStreak: optimizerStep.consecutiveNonFinite,
                      contextNormalizer: network.contextFeatures > 0 ? network.contextNormalizer : nil)
    }

    /// ``state()`` into `state`, reusing the storage of its arrays when it holds the state of an earlier call (of
    /// this run: same sizes, same use of a parameter average), so that a checkpoint every few epochs copies the
    /// parameters and moments into memory already mapped instead of allocating megabytes of fresh pages (about
    /// 0.5 ms per MB on our machines, against 0.1 for a warm copy). A nil `state` is set to ``state()``.
    public func copyState(into state: inout TrainingState?) {
        guard state != nil, state!.parameters.count == parameters.count,
              (state!.averagedParameters != nil) == (average != nil) else {
            state = self.state()
            return
        }
        precondition(exchange.optimizerStateComplete, "copyState(into:): call synchronizeOptimizerState() on every rank first")
        Self.overwrite(&state!.parameters, with: parameters)
        Self.overwrite(&state!.firstMoment, with: optimizer.m)
        Self.overwrite(&state!.secondMoment, with: optimizer.v)
        if let average { Self.overwrite(&state!.averagedParameters!, with: average.average) }
        state!.optimizerStep = optimizer.step
        state!.step = step
        state!.normalizer = normalizer
        state!.bestValidationNLL = bestValidationNLL
        state!.bestEpoch = bestEpoch
        state!.averageStep = average?.lastStep ?? 0
        state!.epochProgress = epochProgress
        state!.nonFiniteStreak = optimizerStep.consecutiveNonFinite
        state!.contextNormalizer = network.contextFeatures > 0 ? network.contextNormalizer : nil
    }

    /// ``model`` into `model`, reusing its parameters' storage when it holds the model of an earlier call (see
    /// ``copyState(into:)``). A nil `model` is set to ``model``.
    public func copyModel(into model: inout RealNVP<Float>?) {
        guard model != nil, model!.parameters.count == evaluationParameters.count else {
            model = self.model
            return
        }
        Self.overwrite(&model!.parameters, with: evaluationParameters)
    }

    /// Copies `buffer` into `array` in place (same count), or replaces `array` with a copy of it.
    static func overwrite(_ array: inout [Float], with buffer: AlignedBuffer<Float>) {
        guard array.count == buffer.count else {
            array = buffer.array
            return
        }
        array.withUnsafeMutableBufferPointer { _ = $0.update(fromContentsOf: buffer.buffer) }
    }

    /// The parameters that are evaluated, sampled and saved as the model `[storageCount]`: the moving average
    /// θ̄ when the run keeps one, the trained parameters θ otherwise.
    public var evaluationParameters: AlignedBuffer<Float> { average?.average ?? parameters }

    /// The current model (with ``evaluationParameters``).
    public var model: RealNVP<Float> {
        RealNVP(network: network, parameters: evaluationParameters.array, normalizer: normalizer,
                contextNormalizer: network.contextNormalizer)
    }

    /// Optimiser steps per epoch: ⌈N / B⌉ (the last batch may be partial and is used with its true size).
    public var batchesPerEpoch: Int { data.batchesPerEpoch }
    /// Completed epochs.
    public var epoch: Int { step / batchesPerEpoch }
    /// Total steps of the run.
    public var totalSteps: Int { configuration.epochs * batchesPerEpoch }
    /// Whether every epoch of the configuration has run.
    public var finished: Bool { step >= totalSteps }

    /// The chain's constant log-det with the opposite sign (nats per row: +Σ log std of the normaliser), added to a
    /// mean of ``FlowNetwork/negativeLogLikelihood(rows:workspace:perRow:)`` for the NLL in data units.
    var dataUnitShift: Double { -network.constantLogDet }

    @inline(__always) func now() -> Double { communicator.wallTime() }

    /// A 64-bit checksum (FNV-1a over the bit patterns) of the parameters.
    public func parameterChecksum() -> Int64 {
        var h = FNV1a()
        for e in 0..<parameters.count { h.mix(UInt64(parameters.base[e].bitPattern)) }
        return Int64(bitPattern: h.value)
    }

    /// Compares the parameter checksum across ranks.
    /// - Throws: ``TrainingStopped`` naming the step when the replicas have drifted apart.
    public func verifyParametersAgree() throws {
        let sum = parameterChecksum()
        if try !communicator.agree(sum) {
            throw TrainingStopped(message: "the parameter replicas differ across ranks after step \(step) "
                + "(checksum on rank \(communicator.rank): \(String(UInt64(bitPattern: sum), radix: 16))); "
                + "the ranks are not running the same computation")
        }
    }

    /// Mean validation NLL (nats, data units) of the model (``evaluationParameters``); nil without a validation
    /// split. The per-row values are gathered and summed in row order, so the result is layout-independent.
    public func validationNLL() throws -> Double? {
        guard let v = validationData, validationRows > 0 else { return nil }
        let ld = try evaluator.logDensity(v.base, rows: validationRows, parameters: evaluationParameters.base)
        var sum = 0.0
        for i in 0..<validationRows { sum += ld[i] + (validationPreLogDet.isEmpty ? 0 : validationPreLogDet[i]) }
        return -sum / Double(validationRows) + dataUnitShift
    }

    /// Records a validation NLL for `epoch` (1-based); returns whether it is the best so far.
    public func recordValidation(_ nll: Double, epoch: Int) -> Bool {
        if let best = bestValidationNLL, !(nll < best) { return false }
        guard nll.isFinite else { return false }
        bestValidationNLL = nll
        bestEpoch = epoch
        return true
    }

    /// The L2 penalty of the trained parameters θ (nats).
    public var penalty: Double {
        L2Penalty.value(l2: configuration.l2, parameters: parameters.base, layout: network.layout)
    }

    /// Runs the remaining steps of the current epoch, then the validation pass. The epoch's sums continue from
    /// ``epochProgress`` (restored from a checkpoint written mid-epoch), so that its report covers all its steps.
    /// - Parameter onStep: called after every step with its report (on every rank).
    public func runEpoch(onStep: (StepReport) -> Void = { _ in }) throws -> EpochReport {
        let e = epoch
        while step < (e + 1) * batchesPerEpoch {
            let start = now()
            let r = try trainStep()
            if r.applied || r.nll.isFinite {
                epochProgress.nllRowSum += r.nll * Double(r.rows)
                epochProgress.rows += r.rows
            }
            if !r.applied { epochProgress.skippedSteps += 1 }
            epochProgress.seconds += now() - start
            onStep(r)
            if stopAgreed { break }
        }
        let p = epochProgress
        // An epoch cut short by a stop keeps its sums for the checkpoint; one whose last step the stop came with
        // is complete, and is validated and reported like any other.
        let complete = step == (e + 1) * batchesPerEpoch
        if complete { epochProgress = EpochProgress() }
        let tv = now()
        // Validated every options.validationInterval epochs and after the last one.
        let due = complete && ((e + 1) % options.validationInterval == 0 || step >= totalSteps)
        let validation = due ? try validationNLL() : nil
        return EpochReport(epoch: e + 1, trainNLL: p.rows > 0 ? p.nllRowSum / Double(p.rows) : .nan, validationNLL: validation,
                           penalty: penalty, seconds: p.seconds,
                           samplesPerSecond: p.seconds > 0 ? Double(p.rows) / p.seconds : 0, skippedSteps: p.skippedSteps,
                           validationSeconds: now() - tv)
    }
}
