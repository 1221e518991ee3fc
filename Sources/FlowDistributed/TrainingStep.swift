import CFlowSupport
import FlowCore
import Foundation

/// What the worker jobs of the current step read: written by the coordinating thread before each region.
struct StepContext {
    /// Positions of this step's rows in the training data (a slice of the epoch's permutation).
    var batch: ArraySlice<Int> = []
    /// How the batch is divided among ranks and workers.
    var plan = ShardPlan(rows: 0, ranks: 1, threads: 1, microBatch: nil)
    /// The reduced gradient the optimiser reads, and an optional second buffer summed on the fly.
    var gradient: UnsafeMutablePointer<Float>?
    var second: UnsafeMutablePointer<Float>?
    /// gradient · scale is the mean over the batch (1/n, or 1 after the exact mode's decoding).
    var scale = 1.0
    /// Clipping factor and learning rate of the update.
    var clip = 1.0
    var learningRate = 0.0
    /// Exact mode: the fixed-point scale exponent S and the rows of the batch.
    var shift = 0
    var rows = 0
    /// Weight of the old parameter average in this step's update.
    var averageRetained: Float = 0
    /// Sharded optimiser step (ZeRO stage 1): this rank updates only `shard` of the parameters.
    var sharded = false
    /// The elements whose update this rank computes (all of them unless sharded).
    var shard: Range<Int> = 0..<0
}

extension DataParallelTrainer {
    /// Runs one optimiser step on the next batch.
    ///
    /// 1. every worker gathers its rows and runs forward and backward into its own gradient buffer (exact
    ///    mode: micro-batch by micro-batch into fixed-point accumulators); with several ranks, each coupling's
    ///    gradient bucket is summed over the workers and its allreduce started as soon as every worker has
    ///    finished that coupling, overlapping the rest of the backward pass;
    /// 2. the allreduces complete, with the loss statistics and the stop request;
    /// 3. per-tensor norms (non-finite check, clipping), then Adam with the division by the batch size, the
    ///    clipping factor and the L2 penalty folded into its single pass;
    /// 4. every ``ParameterAverage/interval`` steps and at an epoch's end, the parameter average's update.
    ///
    /// - Returns: the step's report (identical on every rank except for timings).
    /// - Throws: ``CommunicatorError``; ``TrainingStopped`` when the non-finite policy ends training.
    public func trainStep() throws -> StepReport {
        let t0 = now()
        let sharded = shardsOptimizer
        if !sharded && optimizerStateSharded { try synchronizeOptimizerState() }
        let (n, nllSum, nonFinite) = try computeGradient(sharded: sharded)
        let t1 = now()
        if let faults = options.faults, faults.poisonGradient(step) { stepContext.gradient![0] = .nan }
        shardedCommunication = 0
        let report = try finishStep(rows: n, nll: nllSum / Double(n) + dataUnitShift, nonFinite: nonFinite, started: t0)
        if let a = average, ParameterAverage.isDue(step: step, batchesPerEpoch: batchesPerEpoch) {
            stepContext.averageRetained = a.retained(atStep: step)
            pool.runPrepared(averageJob)
            a.finishUpdate(atStep: step)
        }
        timings.optimizer += now() - t1 - shardedCommunication
        timings.allreduce += shardedCommunication
        timings.steps += 1
        return report
    }

    /// The mean gradient of the summed NLL over the next batch, reduced over workers and ranks, without
    /// updating anything: `[storageCount]` (flat layout), for tests and diagnostics.
    public func nextBatchGradient() throws -> [Float] {
        _ = try computeGradient(sharded: false)
        let c = stepContext
        let s = Float(c.scale)
        return (0..<parameters.count).map { e in (c.gradient![e] + (c.second?[e] ?? 0)) * s }
    }

    /// Steps 1–2: leaves the gradient in `stepContext` (buffer, optional second buffer, scale) and returns the
    /// batch's row count, the summed NLL (normalised units, preprocessing log-det included) and whether a
    /// non-finite value was flagged.
    func computeGradient(sharded: Bool) throws -> (rows: Int, nllSum: Double, nonFinite: Bool) {
        let t0 = now()
        stepContext.sharded = sharded
        stepContext.shard = sharded ? communicator.part(count: network.layout.storageCount, rank: communicator.rank)
            : 0..<network.layout.storageCount
        let batch = data.batch(forStep: step)
        let n = batch.count
        let R = communicator.worldSize
        stepContext.batch = batch
        stepContext.rows = n
        stepContext.second = nil
        var nonFinite = false
        if configuration.reproducible {
            stepContext.plan = ShardPlan(rows: n, ranks: R, threads: pool.count, microBatch: configuration.microBatch)
            pool.runPrepared(computeExactJob)
            timings.compute += now() - t0
            nonFinite = try reduceFixedPoint()
        } else {
            stepContext.plan = ShardPlan(rows: n, ranks: R, threads: pool.count, microBatch: nil)
            let overlap = R > 1 && overlapAllreduce
            if overlap {
                for k in 0..<bucketCounters.count { flow_atomic_store(&bucketCounters.base[k], 0) }
                bucketsStarted = 0
            }
            bucketError = nil
            pool.runPrepared(computeJob)
            let t1 = now()
            timings.compute += t1 - t0
            if let error = bucketError { bucketError = nil; throw error }
            if overlap {
                try startBuckets(through: 0)  // buckets the coordinator has not reached yet
                let t2 = now()
                for k in bucketRequests.indices { if let r = bucketRequests[k] { try communicator.wait(r) } }
                timings.allreduce += now() - t2
            } else {
                try reduceAndAllreduce(scatter: sharded)
            }
        }
        let t3 = now()
        statsBuffer[0] = workers.reduce(0.0) { $0 + $1.nllSum }
        statsBuffer[1] = options.stopRequest(step) ? 1 : 0
        try statsBuffer.withUnsafeMutableBufferPointer { try communicator.allreduceSum($0) }
        if statsBuffer[1] > 0 { stopAgreed = true }
        timings.allreduce += now() - t3
        // The division by the true global batch size happens once, in the optimiser pass (the exact mode's
        // decoding has divided already).
        stepContext.scale = configuration.reproducible ? 1 : 1 / Double(n)
        return (n, statsBuffer[0], nonFinite)
    }

    // MARK: Default mode

    /// Worker w: forward and backward on its shard into its own gradient buffer.
    func computeShard(_ w: Int) {
        let c = stepContext
        let wk = workers[w]
        let shard = c.plan.shard(rank: communicator.rank, thread: w)
        wk.rows = shard.count
        wk.nllSum = 0
        let overlap = c.plan.ranks > 1 && overlapAllreduce
        guard !shard.isEmpty else {
            // In backward order (K−1 … 0), as a working worker reports them: worker 0 starts each bucket as
            // soon as every worker has reported it, so reporting bucket 0 first would make it wait for itself.
            if overlap { for k in (0..<bucketCounters.count).reversed() { bucketFinished(k, worker: w) } }
            return
        }
        let p = UnsafePointer(parameters.base)
        data.gather(c.batch, shard, into: wk.input.base)
        network.forward(wk.input.base, rows: shard.count, parameters: p, workspace: wk.workspace)
        wk.nllSum = network.negativeLogLikelihood(rows: shard.count, workspace: wk.workspace) - data.preprocessingLogDet(c.batch, shard)
        if overlap {
            network.backwardNLL(rows: shard.count, parameters: p, gradient: wk.gradient.base, accumulate: false,
                                workspace: wk.workspace, bucketDone: { b in self.bucketFinished(b, worker: w) })
        } else {
            network.backwardNLL(rows: shard.count, parameters: p, gradient: wk.gradient.base, accumulate: false,
                                workspace: wk.workspace)
        }
    }

    /// Worker w finished coupling k's backward pass. The coordinating thread (worker 0) then starts the
    /// allreduce of every bucket that all workers have finished, from the last coupling down.
    func bucketFinished(_ k: Int, worker w: Int) {
        flow_atomic_add(&bucketCounters.base[k], 1)
        guard w == 0, bucketError == nil else { return }
        do { try startBuckets(through: k) } catch { bucketError = error }  // rethrown after the parallel region
    }

    /// Coordinating thread: for buckets K−1 … k (the backward order) not yet started, waits until every
    /// worker has finished the bucket, sums the workers' gradients over it (worker order), and starts its
    /// non-blocking allreduce; also drives the progress of those in flight.
    func startBuckets(through k: Int) throws {
        let K = bucketCounters.count
        let ranges = network.layout.buckets
        while bucketsStarted < K - k {
            let b = K - 1 - bucketsStarted
            var spins = 0
            while flow_atomic_load(&bucketCounters.base[b]) < pool.count {
                spins += 1
                if spins < 1000 { flow_cpu_relax() } else { sched_yield() }
            }
            let range = ranges[b]
            let target: UnsafeMutablePointer<Float>
            activeWorkers.removeAll(keepingCapacity: true)
            for wk in workers where wk.rows > 0 { activeWorkers.append(wk) }
            if activeWorkers.count == 1 {
                target = activeWorkers[0].gradient.base
            } else {
                target = reduced.base
                let dst = target + range.lowerBound
                if let first = activeWorkers.first {
                    dst.update(from: first.gradient.base + range.lowerBound, count: range.count)
                    for wk in activeWorkers.dropFirst() {
                        VectorKernels.add(wk.gradient.base + range.lowerBound, into: dst, count: range.count)
                    }
                } else {
                    dst.update(repeating: 0, count: range.count)
                }
            }
            stepContext.gradient = target
            bucketRequests[b] = try communicator.startAllreduceSum(UnsafeMutableBufferPointer(start: target + range.lowerBound, count: range.count))
            bucketsStarted += 1
            for r in bucketRequests where r != nil { _ = try communicator.test(r!) }
        }
    }

    /// Without overlap: the workers' gradients summed in worker order (element-wise, so the order is fixed),
    /// then one blocking allreduce of the flat gradient. One worker's buffer is used as it is; with one rank
    /// and two workers the sum is left to the optimiser pass, which reads both buffers (the same rounding,
    /// one pass less over memory).
    /// With `scatter` (sharded optimiser), a reduce-scatter instead of the allreduce: this rank receives the sum
    /// of its shard only.
    func reduceAndAllreduce(scatter: Bool = false) throws {
        let t0 = now()
        let R = communicator.worldSize
        activeWorkers.removeAll(keepingCapacity: true)
        for wk in workers where wk.rows > 0 { activeWorkers.append(wk) }
        if activeWorkers.count == 1 {
            stepContext.gradient = activeWorkers[0].gradient.base
        } else if activeWorkers.count == 2 && R == 1 {
            stepContext.gradient = activeWorkers[0].gradient.base
            stepContext.second = activeWorkers[1].gradient.base
        } else {
            stepContext.gradient = reduced.base
            pool.runPrepared(reduceJob)
        }
        let t1 = now()
        timings.intraNodeReduction += t1 - t0
        if R > 1 {
            let all = UnsafeMutableBufferPointer(start: stepContext.gradient!, count: network.layout.storageCount)
            if scatter { try communicator.reduceScatterSum(all) } else { try communicator.allreduceSum(all) }
        }
        timings.allreduce += now() - t1
    }

    /// Worker w's range of the reduction Σ_w g_w into `reduced`.
    func reduceWorkers(_ w: Int) {
        let range = ShardPlan.part(network.layout.storageCount, parts: pool.count, index: w)
        let dst = reduced.base + range.lowerBound
        guard let first = activeWorkers.first else { dst.update(repeating: 0, count: range.count); return }
        dst.update(from: first.gradient.base + range.lowerBound, count: range.count)
        for wk in activeWorkers.dropFirst() { VectorKernels.add(wk.gradient.base + range.lowerBound, into: dst, count: range.count) }
    }

    // MARK: Exact mode

    /// Worker w: its micro-batches, each into its own gradient slot, with per-tensor max exponents.
    func computeMicroBatches(_ w: Int) {
        let c = stepContext
        let wk = workers[w]
        let layout = network.layout
        let p = UnsafePointer(parameters.base)
        wk.nllSum = 0; wk.rows = 0; wk.nonFinite = false; wk.slotsUsed = 0
        for t in wk.exponents.indices { wk.exponents[t] = FixedPointGradient.zeroExponent }
        for j in c.plan.microBatches(rank: communicator.rank, thread: w) {
            let rows = c.plan.microBatchRows(j)
            data.gather(c.batch, rows, into: wk.input.base)
            network.forward(wk.input.base, rows: rows.count, parameters: p, workspace: wk.workspace)
            wk.nllSum += network.negativeLogLikelihood(rows: rows.count, workspace: wk.workspace) - data.preprocessingLogDet(c.batch, rows)
            let slot = wk.slots[wk.slotsUsed]
            network.backwardNLL(rows: rows.count, parameters: p, gradient: slot.base, accumulate: false, workspace: wk.workspace)
            for (t, tensor) in layout.tensors.enumerated() {
                let (e, bad) = FixedPointGradient.maxExponent(slot.base + tensor.offset, count: tensor.count)
                wk.exponents[t] = max(wk.exponents[t], e)
                if bad { wk.nonFinite = true }
            }
            wk.slotsUsed += 1
            wk.rows += rows.count
        }
    }

    /// Exact mode's reduction: agree on per-tensor exponents (allreduce-max), sum every micro-batch in fixed
    /// point (exact in any order), allreduce the integers, decode once. Returns the non-finite flag.
    func reduceFixedPoint() throws -> Bool {
        let tensorCount = network.layout.tensors.count
        for t in 0..<tensorCount { exponentBuffer[t] = FixedPointGradient.zeroExponent }
        exponentBuffer[tensorCount] = 0
        for wk in workers {
            for t in 0..<tensorCount { exponentBuffer[t] = max(exponentBuffer[t], wk.exponents[t]) }
            if wk.nonFinite { exponentBuffer[tensorCount] = 1 }
        }
        let t0 = now()
        try exponentBuffer.withUnsafeMutableBufferPointer { try communicator.allreduceMax($0) }
        var allreduceTime = now() - t0
        let nonFinite = exponentBuffer[tensorCount] != 0
        stepContext.gradient = reduced.base
        guard !nonFinite else {
            timings.allreduce += allreduceTime
            return true
        }
        stepContext.shift = FixedPointGradient.scaleExponent(microBatches: stepContext.plan.microBatchCount)
        let t1 = now()
        pool.runPrepared(accumulateJob)
        let t2 = now()
        try communicator.allreduceSum(UnsafeMutableBufferPointer(start: accumulator!.base, count: network.layout.storageCount))
        let t3 = now()
        allreduceTime += t3 - t2
        pool.runPrepared(decodeJob)
        timings.intraNodeReduction += (t2 - t1) + (now() - t3)
        timings.allreduce += allreduceTime
        return false
    }

    /// Worker w's range: acc = Σ over every micro-batch slot of round(g · 2^(S − e_t)).
    func accumulateFixedPoint(_ w: Int) {
        let acc = accumulator!
        let range = ShardPlan.part(network.layout.storageCount, parts: pool.count, index: w)
        (acc.base + range.lowerBound).update(repeating: 0, count: range.count)
        for (t, tensor) in network.layout.tensors.enumerated() {
            let lo = max(range.lowerBound, tensor.offset), hi = min(range.upperBound, tensor.offset + tensor.count)
            if lo >= hi || exponentBuffer[t] == FixedPointGradient.zeroExponent { continue }
            let shift = stepContext.shift - Int(exponentBuffer[t])
            for wk in workers {
                for q in 0..<wk.slotsUsed {
                    FixedPointGradient.accumulate(wk.slots[q].base + lo, count: hi - lo, shift: shift, into: acc.base + lo)
                }
            }
        }
    }

    /// Worker w's range: g = Float(acc · 2^(e_t − S) / n).
    func decodeFixedPoint(_ w: Int) {
        let acc = accumulator!, out = reduced
        let range = ShardPlan.part(network.layout.storageCount, parts: pool.count, index: w)
        for (t, tensor) in network.layout.tensors.enumerated() {
            let lo = max(range.lowerBound, tensor.offset), hi = min(range.upperBound, tensor.offset + tensor.count)
            if lo >= hi { continue }
            if exponentBuffer[t] == FixedPointGradient.zeroExponent {
                (out.base + lo).update(repeating: 0, count: hi - lo)
            } else {
                FixedPointGradient.decode(acc.base + lo, count: hi - lo, shift: stepContext.shift - Int(exponentBuffer[t]),
                                          divisor: Double(stepContext.rows), into: out.base + lo)
            }
        }
    }

    // MARK: Optimiser

    /// Worker w's tensors: Σ (g·scale + 2λW)² (norm) and Σ W² (penalty) per tensor; fixed tensor ranges, so
    /// the sums do not depend on T.
    func tensorNorms(_ w: Int) {
        let tensors = network.layout.tensors
        let c = stepContext, l2 = configuration.l2
        let wp = UnsafePointer(parameters.base), gp = UnsafePointer(c.gradient!), g2 = c.second.map { UnsafePointer($0) }
        let out = tensorNormPartials.base
        for t in ShardPlan.part(tensors.count, parts: pool.count, index: w) {
            let s = tensors[t]
            let twoL2 = s.isWeightMatrix ? 2 * l2 : 0
            // This rank's elements of the tensor (the whole tensor unless the optimiser is sharded).
            let lo = max(s.offset, c.shard.lowerBound), count = min(s.offset + s.count, c.shard.upperBound) - lo
            guard count > 0 else { out[2 * t] = 0; out[2 * t + 1] = 0; continue }
            out[2 * t] = VectorKernels.sumOfSquares(gp + lo, g2.map { $0 + lo }, scale: c.scale, plus: twoL2,
                                                    times: wp + lo, count: count)
            out[2 * t + 1] = s.isWeightMatrix && l2 != 0 ? VectorKernels.sumOfSquares(wp + lo, count: count) : 0
        }
    }

    /// Worker w's range of the Adam update, tensor by tensor (λ on weight matrices only).
    func adamRange(_ w: Int) {
        let c = stepContext, l2 = configuration.l2
        let own = c.shard
        let part = ShardPlan.part(own.count, parts: pool.count, index: w)
        let range = (own.lowerBound + part.lowerBound)..<(own.lowerBound + part.upperBound)
        for s in network.layout.tensors {
            let lo = max(range.lowerBound, s.offset), hi = min(range.upperBound, s.offset + s.count)
            if lo >= hi { continue }
            optimizer.updateRange(parameters: parameters.base, gradient: c.gradient!, secondGradient: c.second, lr: c.learningRate,
                                  range: lo..<hi, gradientScale: c.scale * c.clip, l2: s.isWeightMatrix ? l2 * c.clip : 0)
        }
    }

    /// Worker w's range of the parameter average's update.
    func averageRange(_ w: Int) {
        let range = ShardPlan.part(network.layout.storageCount, parts: pool.count, index: w)
        average!.update(parameters: parameters.base, range: range, retained: stepContext.averageRetained)
    }

    /// Step 3: penalty, norm, clipping, the non-finite policy, and the Adam update, on the gradient in
    /// `stepContext`. The effective gradient g·scale + 2λW (λ on weight matrices only), clipped, is never
    /// materialised: its norm is computed per tensor and the scale, the clipping factor and the penalty fold
    /// into Adam's pass.
    func finishStep(rows n: Int, nll: Double, nonFinite flagged: Bool, started t0: Double) throws -> StepReport {
        let tensors = network.layout.tensors
        pool.runPrepared(normJob)
        if stepContext.sharded {
            // Each rank summed its shard: the per-tensor sums over all ranks (a non-finite value propagates).
            let ta = now()
            try communicator.allreduceSum(UnsafeMutableBufferPointer(start: tensorNormPartials.base, count: tensorNormPartials.count))
            shardedCommunication += now() - ta
        }
        var normSquared = 0.0, weightSquares = 0.0
        for t in 0..<tensors.count {
            normSquared += tensorNormPartials[2 * t]
            weightSquares += tensorNormPartials[2 * t + 1]
        }
        let norm = normSquared.squareRoot()
        let penalty = configuration.l2 * weightSquares
        let e = step / batchesPerEpoch, b = step % batchesPerEpoch
        let lr = configuration.schedule.rate(step: optimizer.step, base: configuration.learningRate)
        var report = StepReport(step: step, epoch: e, batch: b, batchesPerEpoch: batchesPerEpoch, rows: n, nll: nll,
                                penalty: penalty, gradientNorm: norm, learningRate: lr, applied: false, seconds: 0)
        if flagged || !norm.isFinite || !nll.isFinite {
            // Name where it appeared: the loss (forward pass), or the first tensor in backward order (from the
            // last coupling down) whose gradient is not finite.
            var location = nll.isFinite ? "the gradient" : "the loss (forward pass)"
            if nll.isFinite, let t = (0..<tensors.count).reversed().first(where: { !tensorNormPartials[2 * $0].isFinite }) {
                location = "the gradient of \(tensors[t].name) (transform \(network.transforms[tensors[t].transform].name))"
            }
            lastNonFiniteLocation = location
            consecutiveNonFinite += 1
            step += 1
            report.seconds = now() - t0
            if configuration.onNonFinite == .stop || consecutiveNonFinite >= 3 {
                throw TrainingStopped(message: "step \(step - 1) (epoch \(e + 1), batch \(b + 1)): \(location) is not finite "
                    + "(NLL \(nll), gradient norm \(norm)); \(consecutiveNonFinite) consecutive non-finite step(s); "
                    + "policy --on-nonfinite \(configuration.onNonFinite.rawValue). Parameters were not updated, and nothing is "
                    + "written from this state (checkpoints written before it are intact). Try a lower --lr or --clip-norm.")
            }
            return report
        }
        consecutiveNonFinite = 0
        stepContext.clip = 1
        if let maxNorm = configuration.clipNorm, norm > maxNorm { stepContext.clip = maxNorm / norm }
        stepContext.learningRate = lr
        optimizer.beginStep()
        pool.runPrepared(adamJob)
        if stepContext.sharded {
            // Every rank updated its shard of θ (and of Adam's moments): gather θ.
            let ta = now()
            try communicator.allgatherParts(UnsafeMutableBufferPointer(start: parameters.base, count: parameters.count))
            shardedCommunication += now() - ta
            optimizerStateSharded = true
        }
        step += 1
        if options.parameterCheckInterval > 0, step % options.parameterCheckInterval == 0 {
            try verifyParametersAgree()
        }
        report.applied = true
        report.seconds = now() - t0
        return report
    }
}
