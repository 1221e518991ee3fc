import FlowCore

/// The update that follows a step's ``ReducedGradient``, identical on every rank: per-tensor norms of the effective
/// gradient, the non-finite policy, clipping, Adam, and the parameter average.
///
/// The effective gradient is g·scale + 2λW (the L2 penalty λ on weight matrices only), clipped to
/// ``TrainingConfiguration/clipNorm``; it is never materialised: its norm is computed per tensor (fixed tensor
/// ranges, so the sums do not depend on the thread count) and the scale, the clipping factor and the penalty fold
/// into Adam's single pass (Kingma & Ba, ICLR 2015, Algorithm 1). Buffers: θ `[storageCount]` (the group's
/// parameters), Adam's m and v `[storageCount]`, the per-tensor partial sums `[2 · tensors]`.
final class OptimizerStep: @unchecked Sendable {
    let configuration: TrainingConfiguration
    let group: WorkerGroup
    /// Adam's state.
    let optimizer: AdamState<Float>
    /// The moving average of the parameters, if the run keeps one.
    let average: ParameterAverage?
    /// Per tensor t: Σ (g·scale + 2λW)² at 2t and Σ W² at 2t + 1, written by the workers (each its own tensors,
    /// through the buffer's base pointer).
    let normPartials: AlignedBuffer<Double>
    /// Consecutive steps skipped for a non-finite loss or gradient.
    var consecutiveNonFinite = 0
    /// Where the last non-finite value appeared ("the gradient of couplings.3.t.2.weight (transform couplings.3)").
    var lastNonFiniteLocation: String?
    /// The current update's inputs to the worker jobs.
    var gradient: ReducedGradient?
    var clip = 1.0
    var learningRate = 0.0
    var averageRetained: Float = 0
    lazy var normJob: (Int) -> Void = { [unowned self] w in self.tensorNorms(w) }
    lazy var adamJob: (Int) -> Void = { [unowned self] w in self.adamRange(w) }
    lazy var averageJob: (Int) -> Void = { [unowned self] w in self.averageRange(w) }

    init(configuration: TrainingConfiguration, group: WorkerGroup, average: ParameterAverage?) {
        self.configuration = configuration
        self.group = group
        optimizer = AdamState(count: group.storageCount, configuration: configuration.adam)
        self.average = average
        normPartials = AlignedBuffer<Double>(count: 2 * group.network.layout.tensors.count)
    }

    /// Applies the update of step `step` (rows n, mean NLL `nll` in data units) through `exchange`.
    /// - Returns: the step's report (`applied` false when the step was skipped for a non-finite value).
    /// - Throws: ``TrainingStopped`` when the non-finite policy ends training; ``CommunicatorError``.
    func apply(_ g: ReducedGradient, step: Int, batchesPerEpoch: Int, rows n: Int, nll: Double,
               exchange: any GradientExchange) throws -> StepReport {
        let tensors = group.network.layout.tensors
        gradient = g
        group.pool.runPrepared(normJob)
        try exchange.combineNormPartials(UnsafeMutableBufferPointer(start: normPartials.base, count: normPartials.count))
        var normSquared = 0.0, weightSquares = 0.0
        for t in 0..<tensors.count {
            normSquared += normPartials[2 * t]
            weightSquares += normPartials[2 * t + 1]
        }
        let norm = normSquared.squareRoot()
        let penalty = configuration.l2 * weightSquares
        let e = step / batchesPerEpoch, b = step % batchesPerEpoch
        let lr = configuration.schedule.rate(step: optimizer.step, base: configuration.learningRate)
        var report = StepReport(step: step, epoch: e, batch: b, batchesPerEpoch: batchesPerEpoch, rows: n, nll: nll,
                                penalty: penalty, gradientNorm: norm, learningRate: lr, applied: false, seconds: 0)
        if g.nonFinite || !norm.isFinite || !nll.isFinite {
            // Name where it appeared: the loss (forward pass), or the first tensor in backward order (from the
            // last transform down) whose gradient is not finite.
            var location = g.nonFiniteLocation ?? (nll.isFinite ? "the gradient" : "the loss (forward pass)")
            if g.nonFiniteLocation == nil, nll.isFinite, let t = (0..<tensors.count).reversed().first(where: { !normPartials[2 * $0].isFinite }) {
                location = "the gradient of \(tensors[t].name) (transform \(group.network.transforms[tensors[t].transform].name))"
            }
            lastNonFiniteLocation = location
            consecutiveNonFinite += 1
            if configuration.onNonFinite == .stop || consecutiveNonFinite >= 3 {
                throw TrainingStopped(message: "step \(step) (epoch \(e + 1), batch \(b + 1)): \(location) is not finite "
                    + "(NLL \(nll), gradient norm \(norm)); \(consecutiveNonFinite) consecutive non-finite step(s); "
                    + "policy --on-nonfinite \(configuration.onNonFinite.rawValue). Parameters were not updated, and nothing is "
                    + "written from this state (checkpoints written before it are intact). "
                    + (g.nonFiniteLocation != nil ? "Check the data for extreme values." : "Try a lower --lr or --clip-norm."))
            }
            return report
        }
        consecutiveNonFinite = 0
        clip = 1
        if let maxNorm = configuration.clipNorm, norm > maxNorm { clip = maxNorm / norm }
        learningRate = lr
        optimizer.beginStep()
        group.pool.runPrepared(adamJob)
        try exchange.completeUpdate()
        report.applied = true
        return report
    }

    /// The parameter average's update when it is due after `completedSteps` steps (every
    /// ``ParameterAverage/interval`` steps and at an epoch's end).
    func updateAverage(completedSteps: Int, batchesPerEpoch: Int) {
        guard let a = average, ParameterAverage.isDue(step: completedSteps, batchesPerEpoch: batchesPerEpoch) else { return }
        averageRetained = a.retained(atStep: completedSteps)
        group.pool.runPrepared(averageJob)
        a.finishUpdate(atStep: completedSteps)
    }

    /// Worker w's tensors: Σ (g·scale + 2λW)² (norm) and Σ W² (penalty) per tensor over this rank's elements.
    func tensorNorms(_ w: Int) {
        let tensors = group.network.layout.tensors
        let c = gradient!, l2 = configuration.l2
        let wp = UnsafePointer(group.parameters.base), gp = UnsafePointer(c.gradient), g2 = c.second.map { UnsafePointer($0) }
        let out = normPartials.base
        for t in ShardPlan.part(tensors.count, parts: group.pool.count, index: w) {
            let s = tensors[t]
            let twoL2 = s.isWeightMatrix ? 2 * l2 : 0
            // This rank's elements of the tensor (the whole tensor unless the optimiser is sharded).
            let lo = max(s.offset, c.owned.lowerBound), count = min(s.offset + s.count, c.owned.upperBound) - lo
            guard count > 0 else { out[2 * t] = 0; out[2 * t + 1] = 0; continue }
            out[2 * t] = VectorKernels.sumOfSquares(gp + lo, g2.map { $0 + lo }, scale: c.scale, plus: twoL2,
                                                    times: wp + lo, count: count)
            out[2 * t + 1] = s.isWeightMatrix && l2 != 0 ? VectorKernels.sumOfSquares(wp + lo, count: count) : 0
        }
    }

    /// Worker w's range of the Adam update, tensor by tensor (λ on weight matrices only).
    func adamRange(_ w: Int) {
        let c = gradient!, l2 = configuration.l2
        let own = c.owned
        let part = ShardPlan.part(own.count, parts: group.pool.count, index: w)
        let range = (own.lowerBound + part.lowerBound)..<(own.lowerBound + part.upperBound)
        for s in group.network.layout.tensors {
            let lo = max(range.lowerBound, s.offset), hi = min(range.upperBound, s.offset + s.count)
            if lo >= hi { continue }
            optimizer.updateRange(parameters: group.parameters.base, gradient: c.gradient, secondGradient: c.second, lr: learningRate,
                                  range: lo..<hi, gradientScale: c.scale * clip, l2: s.isWeightMatrix ? l2 * clip : 0)
        }
    }

    /// Worker w's range of the parameter average's update.
    func averageRange(_ w: Int) {
        let range = ShardPlan.part(group.storageCount, parts: group.pool.count, index: w)
        average!.update(parameters: group.parameters.base, range: range, retained: averageRetained)
    }
}
