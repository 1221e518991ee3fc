import Dispatch
import FlowCore

/// Data-parallel RealNVP training on R ranks × T worker threads.
///
/// One step (see ``trainStep()``):
/// 1. the global batch (rows of the epoch's seeded permutation, the same on every rank) is divided by a
///    ``ShardPlan``; every worker gathers its rows, runs forward and backward into its own gradient buffer;
/// 2. the workers' gradients are summed in a fixed order (intra-node reduction);
/// 3. one allreduce sums the rank gradients (and the loss statistics) across ranks;
/// 4. the sum is divided by the true global batch size once, the L2 penalty's gradient is added, the norm
///    is clipped, and every rank applies the identical Adam update.
///
/// With `reproducible` the gradients are summed exactly in fixed point (``FixedPointGradient``) over
/// layout-independent micro-batches, so that every layout gives the same bits.
///
/// All buffers are allocated in `init`; a steady-state step allocates nothing on the heap except the
/// epoch's permutation once per epoch.
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
    public let optimizer: AdamState<Float>
    /// Batches processed so far (the data position).
    public private(set) var step: Int
    /// Best validation NLL so far (nats, data units) and its epoch (1-based).
    public private(set) var bestValidationNLL: Double?
    public private(set) var bestEpoch: Int?
    /// Cumulative time per phase on this rank.
    public var timings = StepTimings()
    /// Test hook: called with the step index before the optimiser; returning true poisons that step's
    /// gradient with NaN (to test the non-finite policy).
    public var injectNonFinite: (@Sendable (Int) -> Bool)?
    /// Checksum of the parameters is compared across ranks every this many steps (0 = never).
    public var parameterCheckInterval: Int = 0
    /// Whether this rank wants to stop (e.g. a signal arrived). Read once per step and combined across
    /// ranks with the step's loss statistics, so that every rank stops after the same step.
    public var localStopRequest: @Sendable () -> Bool = { false }
    /// Set when some rank asked to stop during the last step: every rank sees it after the same step.
    public private(set) var stopAgreed = false

    /// The normalised training split `[N, D]`.
    public let trainData: AlignedBuffer<Float>
    /// Number of training rows N.
    public let trainRows: Int
    /// The normalised validation split `[validationRows, D]`, if any.
    public let validationData: AlignedBuffer<Float>?
    /// Number of validation rows.
    public let validationRows: Int
    var workers: [WorkerState]
    let reduced: AlignedBuffer<Float>
    let accumulator: AlignedBuffer<Int64>?
    /// Sharded inference with this run's communicator and workers.
    public let evaluator: ShardedEvaluator
    var permutation: [Int] = []
    var permutationEpoch = -1
    /// The discrete training rows (with a preprocessing), re-dequantised every epoch into `trainData`.
    let rawTrain: Matrix<Double>?
    /// Per-row log-det of the preprocessing for the current epoch's training rows `[N]` (zeros without one).
    let trainPreLogDet: AlignedBuffer<Double>
    /// Per-row log-det of the preprocessing of the validation rows.
    let validationPreLogDet: [Double]
    var consecutiveNonFinite = 0
    /// Where the last non-finite value appeared ("the gradient of couplings.3.t.2.weight (coupling 3)").
    public private(set) var lastNonFiniteLocation: String?
    /// Workers with rows in the current step (capacity reserved once).
    var activeWorkers: [WorkerState] = []
    var tensorNormPartials: [Double]

    /// Sets up training on `train` `[N, D]` (data units) with an optional `validation` split.
    ///
    /// With a preprocessing (``Preprocessing/dequantizeLogit(levels:alpha:)``) the rows are discrete values;
    /// every epoch e draws fresh dequantisation noise (purpose `.dequantization`, substream e) for the training
    /// split, the validation split uses one fixed draw, and every reported NLL includes the preprocessing's
    /// per-row log-det.
    ///
    /// - Parameters:
    ///   - normalizer: the data normaliser (fitted by the caller on the preprocessed training split, epoch 0's
    ///     noise, identically on every rank).
    ///   - threads: workers T on this rank.
    ///   - state: a checkpoint's state to resume from; nil starts from the seeded initialisation.
    /// - Throws: ``FlowConfigurationError`` for invalid settings or data of the wrong width.
    public init(
        configuration: TrainingConfiguration, normalizer: Normalizer<Float>, train: Matrix<Double>,
        validation: Matrix<Double>?, communicator: any Communicator, threads: Int, state: TrainingState? = nil
    ) throws {
        try configuration.validate()
        let D = configuration.model.dim
        guard train.columns == D else {
            throw FlowConfigurationError(field: "data", message: "the data has \(train.columns) columns, the model expects D = \(D)")
        }
        guard train.rows >= 1 else { throw FlowConfigurationError(field: "data", message: "the training split is empty") }
        guard threads >= 1 else { throw FlowConfigurationError(field: "threads", message: "\(threads): need at least 1 worker thread") }
        self.configuration = configuration
        self.network = try FlowNetwork(configuration.model)
        self.communicator = communicator
        self.pool = WorkerPool(count: threads)
        self.normalizer = normalizer
        let layout = network.layout
        parameters = AlignedBuffer(RealNVP<Float>.initialParameters(layout: layout, seed: configuration.seed))
        optimizer = AdamState(count: layout.storageCount, configuration: configuration.adam)
        step = 0
        trainRows = train.rows
        let preprocessing = configuration.model.preprocessing
        trainPreLogDet = AlignedBuffer(count: train.rows)
        if preprocessing == .none {
            rawTrain = nil
            trainData = AlignedBuffer(normalizer.normalize(train.converted(to: Float.self)).values)
        } else {
            rawTrain = train
            trainData = AlignedBuffer(count: train.rows * D)  // filled per epoch
        }
        if let v = validation, v.rows > 0 {
            guard v.columns == D else {
                throw FlowConfigurationError(field: "data", message: "the validation data has \(v.columns) columns, expected \(D)")
            }
            let noise = preprocessing == .none ? nil
                : Preprocessing.noise(seed: configuration.seed, substream: Preprocessing.evaluationSubstream, rows: v.rows, dim: D)
            let (pre, ld) = try preprocessing.forward(v, noise: noise)
            validationData = AlignedBuffer(normalizer.normalize(pre.converted(to: Float.self)).values)
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
        workers = (0..<threads).map { _ in
            WorkerState(configuration: configuration.model, capacity: plan.maxPassRows, storageCount: layout.storageCount,
                        slotCount: slotCount, tensorCount: layout.tensors.count)
        }
        reduced = AlignedBuffer(count: layout.storageCount)
        accumulator = configuration.reproducible ? AlignedBuffer(count: layout.storageCount) : nil
        evaluator = ShardedEvaluator(network: network, communicator: communicator, pool: pool)
        tensorNormPartials = Array(repeating: 0, count: 2 * layout.tensors.count)
        activeWorkers.reserveCapacity(threads)
        if let s = state { try restore(s) }
    }

    /// Restores parameters, optimiser state and position from a checkpoint's state.
    func restore(_ s: TrainingState) throws {
        let n = network.layout.storageCount
        guard s.parameters.count == n, s.firstMoment.count == n, s.secondMoment.count == n else {
            throw FlowConfigurationError(field: "resume", message: "the checkpoint holds \(s.parameters.count) parameters, this model has \(n)")
        }
        parameters.assign(s.parameters)
        optimizer.m.assign(s.firstMoment)
        optimizer.v.assign(s.secondMoment)
        optimizer.step = s.optimizerStep
        step = s.step
        bestValidationNLL = s.bestValidationNLL
        bestEpoch = s.bestEpoch
    }

    /// The state to write into a checkpoint.
    public func state() -> TrainingState {
        TrainingState(parameters: parameters.array, firstMoment: optimizer.m.array, secondMoment: optimizer.v.array,
                      optimizerStep: optimizer.step, step: step, normalizer: normalizer,
                      bestValidationNLL: bestValidationNLL, bestEpoch: bestEpoch)
    }

    /// The current model.
    public var model: RealNVP<Float> {
        RealNVP(network: network, parameters: parameters.array, normalizer: normalizer)
    }

    /// Optimiser steps per epoch: ⌈N / B⌉ (the last batch may be partial and is used with its true size).
    public var batchesPerEpoch: Int { (trainRows + configuration.batchSize - 1) / configuration.batchSize }
    /// Completed epochs.
    public var epoch: Int { step / batchesPerEpoch }
    /// Total steps of the run.
    public var totalSteps: Int { configuration.epochs * batchesPerEpoch }
    /// Whether every epoch of the configuration has run.
    public var finished: Bool { step >= totalSteps }

    /// −Σ log std (nats): converts normalised-unit NLL to data units.
    var dataUnitShift: Double { -normalizer.logDetJacobian }

    /// The epoch's permutation of the training rows (purpose `.shuffle`, substream = epoch).
    func batchRows(for step: Int) -> ArraySlice<Int> {
        let e = step / batchesPerEpoch, b = step % batchesPerEpoch
        if permutationEpoch != e {
            permutation = RandomStream(seed: configuration.seed, purpose: .shuffle, substream: UInt32(truncatingIfNeeded: e))
                .permutation(trainRows)
            permutationEpoch = e
            if let raw = rawTrain { dequantize(raw, epoch: e) }
        }
        let B = configuration.batchSize
        return permutation[(b * B)..<min(trainRows, (b + 1) * B)]
    }

    @inline(__always) func now() -> Double { communicator.wallTime() }

    /// Epoch e's training rows: fresh dequantisation noise, preprocessing, normaliser (once per epoch).
    func dequantize(_ raw: Matrix<Double>, epoch e: Int) {
        let preprocessing = configuration.model.preprocessing
        let noise = Preprocessing.noise(seed: configuration.seed, substream: UInt32(truncatingIfNeeded: e), rows: raw.rows, dim: raw.columns)
        // The data were checked against the levels when the run was set up, so the transform cannot fail here.
        guard let (pre, ld) = try? preprocessing.forward(raw, noise: noise) else { preconditionFailure("data outside the declared levels") }
        trainData.assign(normalizer.normalize(pre.converted(to: Float.self)).values)
        trainPreLogDet.assign(ld)
    }

    /// Σ of the preprocessing log-det over the batch rows at `positions` (0 without a preprocessing).
    @inline(__always)
    func preprocessingLogDet(_ batch: ArraySlice<Int>, _ positions: Range<Int>) -> Double {
        guard rawTrain != nil else { return 0 }
        var s = 0.0
        for pos in positions { s += trainPreLogDet[batch[batch.startIndex + pos]] }
        return s
    }

    /// Gathers the training rows `positions` of `batch` into `input` `[rows, D]`.
    @inline(__always)
    func gather(_ batch: ArraySlice<Int>, _ positions: Range<Int>, into input: UnsafeMutablePointer<Float>) {
        let D = network.dim
        let start = batch.startIndex
        for (i, pos) in positions.enumerated() {
            (input + i * D).update(from: trainData.base + batch[start + pos] * D, count: D)
        }
    }

    /// Runs one optimiser step on the next batch.
    /// - Returns: the step's report (identical on every rank except for timings).
    /// - Throws: ``CommunicatorError``; ``TrainingStopped`` when the non-finite policy ends training.
    public func trainStep() throws -> StepReport {
        let t0 = now()
        let (g, second, n, nllSum, nonFinite, scale) = try computeMeanGradient()
        let t6 = now()
        if let hook = injectNonFinite, hook(step) { g.base[0] = .nan }
        let report = try finishStep(gradient: g, second: second, scale: scale, rows: n, nll: nllSum / Double(n) + dataUnitShift,
                                    nonFinite: nonFinite, started: t0)
        timings.optimizer += now() - t6
        timings.steps += 1
        return report
    }

    /// The mean gradient of the summed NLL over the next batch, reduced over workers and ranks, without
    /// updating anything: `[storageCount]` (flat layout), for tests and diagnostics.
    public func nextBatchGradient() throws -> [Float] {
        let r = try computeMeanGradient()
        let s = Float(r.scale)
        var g = r.gradient.array
        if let g2 = r.second { for e in g.indices { g[e] += g2.base[e] } }
        return g.map { $0 * s }
    }

    /// Steps 1–3 of a training step: forward and backward on every worker, intra-node reduction,
    /// allreduce. Returns the buffer holding the gradient, the factor (1/n, or 1 when already divided)
    /// that turns it into the mean over the batch, the batch's row count, the summed NLL (normalised units)
    /// and whether a non-finite value was flagged.
    func computeMeanGradient() throws -> (gradient: AlignedBuffer<Float>, second: AlignedBuffer<Float>?, rows: Int, nllSum: Double,
                                          nonFinite: Bool, scale: Double) {
        let t0 = now()
        let batch = batchRows(for: step)
        let n = batch.count
        let layout = network.layout
        let P = layout.storageCount
        let p = UnsafePointer(parameters.base)
        let R = communicator.worldSize, rank = communicator.rank
        var nonFinite = false
        let g: AlignedBuffer<Float>
        var second: AlignedBuffer<Float>? = nil
        let nllSum: Double

        if configuration.reproducible {
            let plan = ShardPlan(rows: n, ranks: R, threads: pool.count, microBatch: configuration.microBatch)
            pool.run { w in
                let wk = workers[w]
                wk.nllSum = 0; wk.rows = 0; wk.nonFinite = false; wk.slotsUsed = 0
                for t in wk.exponents.indices { wk.exponents[t] = FixedPointGradient.zeroExponent }
                for j in plan.microBatches(rank: rank, thread: w) {
                    let rows = plan.microBatchRows(j)
                    gather(batch, rows, into: wk.input.base)
                    network.forward(wk.input.base, rows: rows.count, parameters: p, workspace: wk.workspace)
                    wk.nllSum += network.negativeLogLikelihood(rows: rows.count, workspace: wk.workspace) - preprocessingLogDet(batch, rows)
                    let slot = wk.slots[wk.slotsUsed]
                    network.backwardNLL(rows: rows.count, parameters: p, gradient: slot.base, accumulate: false,
                                        workspace: wk.workspace)
                    for (t, tensor) in layout.tensors.enumerated() {
                        let (e, bad) = FixedPointGradient.maxExponent(slot.base + tensor.offset, count: tensor.count)
                        wk.exponents[t] = max(wk.exponents[t], e)
                        if bad { wk.nonFinite = true }
                    }
                    wk.slotsUsed += 1
                    wk.rows += rows.count
                }
            }
            let t1 = now()
            timings.compute += t1 - t0
            // Per-tensor exponents and the non-finite flag, agreed across ranks.
            var exps = [Int64](repeating: FixedPointGradient.zeroExponent, count: layout.tensors.count + 1)
            exps[layout.tensors.count] = 0
            for wk in workers {
                for t in 0..<layout.tensors.count { exps[t] = max(exps[t], wk.exponents[t]) }
                if wk.nonFinite { exps[layout.tensors.count] = 1 }
            }
            let t2 = now()
            try exps.withUnsafeMutableBufferPointer { try communicator.allreduceMax($0) }
            var allreduceTime = now() - t2
            nonFinite = exps[layout.tensors.count] != 0
            let S = FixedPointGradient.scaleExponent(microBatches: plan.microBatchCount)
            let acc = accumulator!
            let t3 = now()
            if !nonFinite {
                let workers = self.workers
                pool.forEachRange(P) { range in
                    (acc.base + range.lowerBound).update(repeating: 0, count: range.count)
                    for (t, tensor) in layout.tensors.enumerated() {
                        let lo = max(range.lowerBound, tensor.offset), hi = min(range.upperBound, tensor.offset + tensor.count)
                        if lo >= hi || exps[t] == FixedPointGradient.zeroExponent { continue }
                        let shift = S - Int(exps[t])
                        for wk in workers {
                            for q in 0..<wk.slotsUsed {
                                FixedPointGradient.accumulate(wk.slots[q].base + lo, count: hi - lo, shift: shift, into: acc.base + lo)
                            }
                        }
                    }
                }
            }
            let t4 = now()
            let buffer = UnsafeMutableBufferPointer(start: acc.base, count: P)
            if !nonFinite { try communicator.allreduceSum(buffer) }
            let t5 = now()
            allreduceTime += t5 - t4
            if !nonFinite {
                let out = reduced
                pool.forEachRange(P) { range in
                    for (t, tensor) in layout.tensors.enumerated() {
                        let lo = max(range.lowerBound, tensor.offset), hi = min(range.upperBound, tensor.offset + tensor.count)
                        if lo >= hi { continue }
                        if exps[t] == FixedPointGradient.zeroExponent {
                            (out.base + lo).update(repeating: 0, count: hi - lo)
                        } else {
                            FixedPointGradient.decode(acc.base + lo, count: hi - lo, shift: S - Int(exps[t]),
                                                      divisor: Double(n), into: out.base + lo)
                        }
                    }
                }
            }
            timings.intraNodeReduction += (t4 - t3) + (now() - t5)
            timings.allreduce += allreduceTime
            g = reduced
            var stats = [workers.reduce(0.0) { $0 + $1.nllSum }, localStopRequest() ? 1 : 0]
            try stats.withUnsafeMutableBufferPointer { try communicator.allreduceSum($0) }
            nllSum = stats[0]
            if stats[1] > 0 { stopAgreed = true }
        } else {
            let plan = ShardPlan(rows: n, ranks: R, threads: pool.count, microBatch: nil)
            pool.run { w in
                let wk = workers[w]
                let shard = plan.shard(rank: rank, thread: w)
                wk.rows = shard.count
                wk.nllSum = 0
                guard !shard.isEmpty else { return }
                gather(batch, shard, into: wk.input.base)
                network.forward(wk.input.base, rows: shard.count, parameters: p, workspace: wk.workspace)
                wk.nllSum = network.negativeLogLikelihood(rows: shard.count, workspace: wk.workspace) - preprocessingLogDet(batch, shard)
                network.backwardNLL(rows: shard.count, parameters: p, gradient: wk.gradient.base, accumulate: false,
                                    workspace: wk.workspace)
            }
            let t1 = now()
            timings.compute += t1 - t0
            // Intra-node reduction: g = Σ_w g_w in worker order (element-wise, so the order is fixed). One
            // worker's buffer is used as it is; with one rank and two workers the sum is left to the optimiser
            // pass, which reads both buffers (the same rounding, one pass less over memory).
            activeWorkers.removeAll(keepingCapacity: true)
            for wk in workers where wk.rows > 0 { activeWorkers.append(wk) }
            let active = activeWorkers
            if active.count == 1 {
                g = active[0].gradient
            } else if active.count == 2 && R == 1 {
                g = active[0].gradient
                second = active[1].gradient
            } else {
                g = reduced
                pool.forEachRange(P) { range in
                    let dst = g.base + range.lowerBound
                    guard let first = active.first else { dst.update(repeating: 0, count: range.count); return }
                    dst.update(from: first.gradient.base + range.lowerBound, count: range.count)
                    for wk in active.dropFirst() {
                        VectorKernels.add(wk.gradient.base + range.lowerBound, into: dst, count: range.count)
                    }
                }
            }
            let t2 = now()
            timings.intraNodeReduction += t2 - t1
            // One allreduce of the flat gradient, one of the loss statistics.
            if R > 1 {
                try communicator.allreduceSum(UnsafeMutableBufferPointer(start: g.base, count: P))
            }
            var stats = [workers.reduce(0.0) { $0 + $1.nllSum }, localStopRequest() ? 1 : 0]
            try stats.withUnsafeMutableBufferPointer { try communicator.allreduceSum($0) }
            nllSum = stats[0]
            if stats[1] > 0 { stopAgreed = true }
            timings.allreduce += now() - t2
        }
        // The division by the true global batch size happens once, folded into the optimiser pass; the exact
        // mode's decoding has already divided.
        return (g, second, n, nllSum, nonFinite, configuration.reproducible ? 1 : 1 / Double(n))
    }

    /// Penalty, norm, clipping, the non-finite policy, and the Adam update, on the reduced gradient `g`
    /// whose mean over the batch is g·`scale`. The effective gradient g·scale + 2λW (λ on weight matrices
    /// only), clipped, is never materialised: its norm is computed per tensor (fixed ranges, whatever T,
    /// summed in tensor order) and the scale, the clipping factor and the penalty fold into Adam's pass.
    func finishStep(gradient g: AlignedBuffer<Float>, second: AlignedBuffer<Float>?, scale: Double, rows n: Int, nll: Double,
                    nonFinite flagged: Bool, started t0: Double) throws -> StepReport {
        let layout = network.layout
        let P = layout.storageCount
        let tensors = layout.tensors
        let l2 = configuration.l2
        let gp = g.base, wp = parameters.base, g2 = second?.base
        tensorNormPartials.withUnsafeMutableBufferPointer { nb in
            let out = nb.baseAddress!
            pool.run { w in
                for t in ShardPlan.part(tensors.count, parts: pool.count, index: w) {
                    let s = tensors[t]
                    let twoL2 = s.isWeightMatrix ? 2 * l2 : 0
                    out[2 * t] = VectorKernels.sumOfSquares(gp + s.offset, g2.map { $0 + s.offset }, scale: scale, plus: twoL2,
                                                            times: wp + s.offset, count: s.count)
                    out[2 * t + 1] = s.isWeightMatrix && l2 != 0 ? VectorKernels.sumOfSquares(wp + s.offset, count: s.count) : 0
                }
            }
        }
        var normSquared = 0.0, weightSquares = 0.0
        for t in 0..<tensors.count {
            normSquared += tensorNormPartials[2 * t]
            weightSquares += tensorNormPartials[2 * t + 1]
        }
        let norm = normSquared.squareRoot()
        let penalty = l2 * weightSquares
        let e = step / batchesPerEpoch, b = step % batchesPerEpoch
        let lr = configuration.schedule.rate(step: optimizer.step, base: configuration.learningRate)
        var report = StepReport(step: step, epoch: e, batch: b, batchesPerEpoch: batchesPerEpoch, rows: n, nll: nll,
                                penalty: penalty, gradientNorm: norm, learningRate: lr, applied: false, seconds: 0)
        if flagged || !norm.isFinite || !nll.isFinite {
            // Name where it appeared: the loss (forward pass), or the first tensor in backward order (from the
            // last coupling down) whose gradient is not finite.
            var location = nll.isFinite ? "the gradient" : "the loss (forward pass)"
            if nll.isFinite, let t = (0..<tensors.count).reversed().first(where: { !tensorNormPartials[2 * $0].isFinite }) {
                location = "the gradient of \(tensors[t].name) (coupling \(tensors[t].name.split(separator: ".")[1]))"
            }
            lastNonFiniteLocation = location
            consecutiveNonFinite += 1
            step += 1
            report.seconds = now() - t0
            if configuration.onNonFinite == .stop || consecutiveNonFinite >= 3 {
                throw TrainingStopped(message: "step \(step - 1) (epoch \(e + 1), batch \(b + 1)): \(location) is not finite "
                    + "(NLL \(nll), gradient norm \(norm)); \(consecutiveNonFinite) consecutive non-finite step(s); "
                    + "policy --on-nonfinite \(configuration.onNonFinite.rawValue). Parameters were not updated; "
                    + "the last checkpoint is intact. Try a lower --lr or --clip-norm.")
            }
            return report
        }
        consecutiveNonFinite = 0
        var clip = 1.0
        if let maxNorm = configuration.clipNorm, norm > maxNorm { clip = maxNorm / norm }
        optimizer.beginStep()
        let opt = optimizer
        pool.forEachRange(P) { range in
            for s in tensors {
                let lo = max(range.lowerBound, s.offset), hi = min(range.upperBound, s.offset + s.count)
                if lo >= hi { continue }
                opt.updateRange(parameters: wp, gradient: gp, secondGradient: g2, lr: lr, range: lo..<hi, gradientScale: scale * clip,
                                l2: s.isWeightMatrix ? l2 * clip : 0)
            }
        }
        step += 1
        if parameterCheckInterval > 0, step % parameterCheckInterval == 0 {
            try verifyParametersAgree()
        }
        report.applied = true
        report.seconds = now() - t0
        return report
    }

    /// A 64-bit checksum (FNV-1a over the bit patterns) of the parameters.
    public func parameterChecksum() -> Int64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for e in 0..<parameters.count {
            h ^= UInt64(parameters.base[e].bitPattern)
            h = h &* 0x0000_0100_0000_01b3
        }
        return Int64(bitPattern: h)
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

    /// Mean validation NLL (nats, data units) of the current parameters; nil without a validation split.
    /// The per-row values are gathered and summed in row order, so the result is layout-independent.
    public func validationNLL() throws -> Double? {
        guard let v = validationData, validationRows > 0 else { return nil }
        let ld = try evaluator.logDensity(v.base, rows: validationRows, parameters: parameters.base)
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

    /// The L2 penalty of the current parameters (nats).
    public var penalty: Double {
        L2Penalty.value(l2: configuration.l2, parameters: parameters.base, layout: network.layout)
    }

    /// Runs the remaining steps of the current epoch, then the validation pass.
    /// - Parameter onStep: called after every step with its report (on every rank).
    public func runEpoch(onStep: (StepReport) -> Void = { _ in }) throws -> EpochReport {
        let e = epoch
        var nllRows = 0.0, rows = 0, skipped = 0
        let start = now()
        while step < (e + 1) * batchesPerEpoch {
            let r = try trainStep()
            if r.applied || r.nll.isFinite {
                nllRows += r.nll * Double(r.rows)
                rows += r.rows
            }
            if !r.applied { skipped += 1 }
            onStep(r)
            if stopAgreed { break }
        }
        let seconds = now() - start
        let validation = stopAgreed ? nil : try validationNLL()
        return EpochReport(epoch: e + 1, trainNLL: rows > 0 ? nllRows / Double(rows) : .nan, validationNLL: validation,
                           penalty: penalty, seconds: seconds,
                           samplesPerSecond: seconds > 0 ? Double(rows) / seconds : 0, skippedSteps: skipped)
    }
}
