import FlowCore

/// The exchange of `--reproducible`: the same bits for any threads × ranks layout. The global batch is cut into
/// micro-batches of a fixed size that do not depend on the layout (``ShardPlan``); every micro-batch's gradient
/// goes into its own slot; the ranks agree on a per-tensor binary exponent (allreduce-max); every slot is
/// converted to 64-bit fixed point with that exponent and summed, which is exact and so independent of the order;
/// the integers are allreduced (exact again) and decoded once, divided by the batch size (``FixedPointGradient``).
final class FixedPointExchange: GradientExchange {
    let group: WorkerGroup
    let mode = GradientExchangeMode.exactFixedPoint
    let microBatch: Int
    /// The fixed-point sum `[storageCount]`.
    let accumulator: AlignedBuffer<Int64>
    /// Per-tensor max exponents `[tensors]` and the non-finite flag (last element), reused every step.
    var exponentBuffer: [Int64]
    /// The scale exponent S of this step's fixed point.
    var shift = 0
    lazy var computeJob: (Int) -> Void = { [unowned self] w in self.computeMicroBatches(w) }
    lazy var accumulateJob: (Int) -> Void = { [unowned self] w in self.accumulateFixedPoint(w) }
    lazy var decodeJob: (Int) -> Void = { [unowned self] w in self.decodeFixedPoint(w) }

    init(group: WorkerGroup, microBatch: Int) {
        self.group = group
        self.microBatch = microBatch
        accumulator = AlignedBuffer(count: group.storageCount)
        exponentBuffer = Array(repeating: 0, count: group.network.layout.tensors.count + 1)
    }

    func computeGradient() throws -> ReducedGradient {
        let g = group, t0 = g.now()
        g.context.plan = ShardPlan(rows: g.context.batch.count, ranks: g.communicator.worldSize, threads: g.pool.count,
                                   microBatch: microBatch)
        g.pool.runPrepared(computeJob)
        g.timings.compute += g.now() - t0
        try g.checkBatchStatistics()
        let nonFinite = try reduceFixedPoint()
        return ReducedGradient(gradient: g.reduced.base, second: nil, scale: 1, owned: 0..<g.storageCount, nonFinite: nonFinite)
    }

    /// Worker w: its micro-batches, each into its own gradient slot, with per-tensor max exponents.
    func computeMicroBatches(_ w: Int) {
        let g = group, c = g.context
        let wk = g.workers[w]
        let p = UnsafePointer(g.parameters.base)
        wk.nllSum = 0; wk.rows = 0; wk.nonFinite = false; wk.slotsUsed = 0
        for t in wk.exponents.indices { wk.exponents[t] = FixedPointGradient.zeroExponent }
        if let statistics = g.batchStatistics {
            computeMicroBatchesWithBatchStatistics(w, statistics: statistics)
            return
        }
        for j in c.plan.microBatches(rank: g.communicator.rank, thread: w) {
            let rows = c.plan.microBatchRows(j)
            g.data.gather(c.batch, rows, into: wk.input.base)
            g.network.forward(wk.input.base, rows: rows.count, parameters: p, workspace: wk.workspace)
            wk.nllSum += g.network.negativeLogLikelihood(rows: rows.count, workspace: wk.workspace) - g.data.preprocessingLogDet(c.batch, rows)
            let slot = wk.slots[wk.slotsUsed]
            g.network.backwardNLL(rows: rows.count, parameters: p, gradient: slot.base, accumulate: false, workspace: wk.workspace)
            recordExponents(of: slot, worker: wk)
            wk.slotsUsed += 1
            wk.rows += rows.count
        }
    }

    /// ``computeMicroBatches(_:)`` for a chain with batch normalisation: the worker's micro-batches as passes run
    /// transform by transform, each in its own workspace and gradient slot, its statistics in the slot of its
    /// micro-batch index (the same in every layout, so the totals are too).
    func computeMicroBatchesWithBatchStatistics(_ w: Int, statistics: SyncBatchStatistics) {
        let g = group, c = g.context, wk = g.workers[w], p = UnsafePointer(g.parameters.base)
        let mine = c.plan.microBatches(rank: g.communicator.rank, thread: w)
        wk.passes.removeAll(keepingCapacity: true)
        for (q, j) in mine.enumerated() {
            let rows = c.plan.microBatchRows(j), ws = wk.passWorkspaces[q]
            g.data.gather(c.batch, rows, into: wk.input.base)
            g.network.loadInput(wk.input.base, rows: rows.count, workspace: ws)
            wk.passes.append(BatchPass(rows: rows.count, workspace: ws, gradient: wk.slots[q].base, slot: j))
        }
        g.network.forwardWithBatchStatistics(wk.passes, worker: w, parameters: p, statistics: statistics)
        for (q, j) in mine.enumerated() {
            let rows = c.plan.microBatchRows(j)
            wk.nllSum += g.network.negativeLogLikelihood(rows: rows.count, workspace: wk.passWorkspaces[q]) - g.data.preprocessingLogDet(c.batch, rows)
            wk.rows += rows.count
        }
        g.network.backwardNLLWithBatchStatistics(wk.passes, worker: w, parameters: p, statistics: statistics)
        for q in 0..<wk.passes.count { recordExponents(of: wk.slots[q], worker: wk) }
        wk.slotsUsed = wk.passes.count
    }

    /// Raises the worker's per-tensor max exponents to those of a micro-batch's gradient `slot`; flags non-finite values.
    func recordExponents(of slot: AlignedBuffer<Float>, worker wk: WorkerState) {
        for (t, tensor) in group.network.layout.tensors.enumerated() {
            let (e, bad) = FixedPointGradient.maxExponent(slot.base + tensor.offset, count: tensor.count)
            wk.exponents[t] = max(wk.exponents[t], e)
            if bad { wk.nonFinite = true }
        }
    }

    /// Agrees on per-tensor exponents (allreduce-max), sums every micro-batch in fixed point (exact in any order),
    /// allreduces the integers, decodes once into the group's `reduced`. Returns the non-finite flag.
    func reduceFixedPoint() throws -> Bool {
        let g = group
        let tensorCount = g.network.layout.tensors.count
        for t in 0..<tensorCount { exponentBuffer[t] = FixedPointGradient.zeroExponent }
        exponentBuffer[tensorCount] = 0
        for wk in g.workers {
            for t in 0..<tensorCount { exponentBuffer[t] = max(exponentBuffer[t], wk.exponents[t]) }
            if wk.nonFinite { exponentBuffer[tensorCount] = 1 }
        }
        let t0 = g.now()
        try exponentBuffer.withUnsafeMutableBufferPointer { try g.communicator.allreduceMax($0) }
        var allreduceTime = g.now() - t0
        guard exponentBuffer[tensorCount] == 0 else {
            g.timings.allreduce += allreduceTime
            return true
        }
        shift = FixedPointGradient.scaleExponent(microBatches: g.context.plan.microBatchCount)
        let t1 = g.now()
        g.pool.runPrepared(accumulateJob)
        let t2 = g.now()
        try g.communicator.allreduceSum(UnsafeMutableBufferPointer(start: accumulator.base, count: g.storageCount))
        let t3 = g.now()
        allreduceTime += t3 - t2
        g.pool.runPrepared(decodeJob)
        g.timings.intraNodeReduction += (t2 - t1) + (g.now() - t3)
        g.timings.allreduce += allreduceTime
        return false
    }

    /// Worker w's range: acc = Σ over every micro-batch slot of round(g · 2^(S − e_t)).
    func accumulateFixedPoint(_ w: Int) {
        let g = group, acc = accumulator
        let range = ShardPlan.part(g.storageCount, parts: g.pool.count, index: w)
        (acc.base + range.lowerBound).update(repeating: 0, count: range.count)
        for (t, tensor) in g.network.layout.tensors.enumerated() {
            let lo = max(range.lowerBound, tensor.offset), hi = min(range.upperBound, tensor.offset + tensor.count)
            if lo >= hi || exponentBuffer[t] == FixedPointGradient.zeroExponent { continue }
            let s = shift - Int(exponentBuffer[t])
            for wk in g.workers {
                for q in 0..<wk.slotsUsed {
                    FixedPointGradient.accumulate(wk.slots[q].base + lo, count: hi - lo, shift: s, into: acc.base + lo)
                }
            }
        }
    }

    /// Worker w's range: g = Float(acc · 2^(e_t − S) / n).
    func decodeFixedPoint(_ w: Int) {
        let g = group, acc = accumulator, out = g.reduced
        let range = ShardPlan.part(g.storageCount, parts: g.pool.count, index: w)
        for (t, tensor) in g.network.layout.tensors.enumerated() {
            let lo = max(range.lowerBound, tensor.offset), hi = min(range.upperBound, tensor.offset + tensor.count)
            if lo >= hi { continue }
            if exponentBuffer[t] == FixedPointGradient.zeroExponent {
                (out.base + lo).update(repeating: 0, count: hi - lo)
            } else {
                FixedPointGradient.decode(acc.base + lo, count: hi - lo, shift: shift - Int(exponentBuffer[t]),
                                          divisor: Double(g.context.batch.count), into: out.base + lo)
            }
        }
    }
}
