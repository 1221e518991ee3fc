import FlowCore

extension DataParallelTrainer {
    /// Runs one optimiser step on the next batch.
    ///
    /// 1. the ``gradientExchange`` runs forward and backward on every worker and combines the gradients across
    ///    workers and ranks (``GradientExchangeMode``);
    /// 2. one allreduce of the loss statistics and the stop request;
    /// 3. the ``OptimizerStep``: per-tensor norms (non-finite check, clipping), then Adam with the division by the
    ///    batch size, the clipping factor and the L2 penalty folded into its single pass;
    /// 4. every ``ParameterAverage/interval`` steps and at an epoch's end, the parameter average's update.
    ///
    /// - Returns: the step's report (identical on every rank except for timings).
    /// - Throws: ``CommunicatorError``; ``TrainingStopped`` when the non-finite policy ends training.
    public func trainStep() throws -> StepReport {
        let t0 = now()
        let (n, nllSum, computed) = try computeGradient()
        var gradient = computed
        let t1 = now()
        if let statistics = group.batchStatistics,
           let name = network.nonFiniteBatchStatistics(parameters: parameters.base, forwardTotals: { statistics.forwardTotals($0) }) {
            // An outlier can leave the normalised loss finite but the batch's statistics or running averages not:
            // the step is non-finite (skipped or stopping, by the policy).
            gradient.nonFinite = true
            gradient.nonFiniteLocation = "the batch statistics of \(name) (its running averages would not be finite)"
        }
        if let faults = options.faults, faults.poisonGradient(step) { gradient.gradient[0] = .nan }
        let allreduceBefore = group.timings.allreduce
        var report: StepReport
        do {
            report = try optimizerStep.apply(gradient, step: step, batchesPerEpoch: batchesPerEpoch, rows: n,
                                             nll: nllSum / Double(n) + dataUnitShift, exchange: exchange)
        } catch let stop as TrainingStopped {
            step += 1  // the skipped step counts as processed
            throw stop
        }
        step += 1
        if report.applied, let statistics = group.batchStatistics {
            // Batch normalisation's running averages, from the global batch's statistics: the same on every rank.
            network.updateRunningAverages(parameters: parameters.base) { statistics.forwardTotals($0) }
        }
        if report.applied, options.parameterCheckInterval > 0, step % options.parameterCheckInterval == 0 {
            try verifyParametersAgree()
        }
        report.seconds = now() - t0
        optimizerStep.updateAverage(completedSteps: step, batchesPerEpoch: batchesPerEpoch)
        // The optimiser phase without the collectives of a sharded step (counted as allreduce time).
        group.timings.optimizer += now() - t1 - (group.timings.allreduce - allreduceBefore)
        group.timings.steps += 1
        return report
    }

    /// The mean gradient of the summed NLL over the next batch, reduced over workers and ranks, without
    /// updating anything: `[storageCount]` (flat layout), for tests and diagnostics. Collective.
    public func nextBatchGradient() throws -> [Float] {
        let (_, _, c) = try computeGradient(complete: true)
        let s = Float(c.scale)
        return (0..<parameters.count).map { e in (c.gradient[e] + (c.second?[e] ?? 0)) * s }
    }

    /// Steps 1–2: the batch's rows, the summed NLL (normalised units, preprocessing log-det included) and the
    /// reduced gradient. With `complete` the gradient is whole on every rank even when the run shards the
    /// optimiser (a blocking allreduce instead of the reduce-scatter).
    func computeGradient(complete: Bool = false) throws -> (rows: Int, nllSum: Double, gradient: ReducedGradient) {
        let tb = now()
        group.context.batch = data.batch(forStep: step)  // prepares the epoch (order, dequantisation) at its first step
        group.timings.compute += now() - tb
        let n = group.context.batch.count
        let gradient = try complete && exchange.mode == .shardedOptimizer
            ? BlockingAllreduceExchange(group: group).computeGradient() : exchange.computeGradient()
        let t0 = now()
        statsBuffer[0] = group.nllSum
        statsBuffer[1] = options.stopRequest(step) ? 1 : 0
        try statsBuffer.withUnsafeMutableBufferPointer { try communicator.allreduceSum($0) }
        if statsBuffer[1] > 0 { stopAgreed = true }
        group.timings.allreduce += now() - t0
        return (n, statsBuffer[0], gradient)
    }
}
