import FlowCore

/// Where the workers of the current step read their rows: written by the coordinating thread before each region.
struct StepContext {
    /// Positions of this step's rows in the training data (a slice of the epoch's permutation).
    var batch: ArraySlice<Int> = []
    /// How the batch is divided among ranks and workers.
    var plan = ShardPlan(rows: 0, ranks: 1, threads: 1, microBatch: nil)
}

/// This rank's worker threads and everything a step's parallel regions share: the network, the training data,
/// the parameters θ `[storageCount]` (read by every worker, written by the optimiser), each worker's
/// ``WorkerState``, and the buffer `reduced` `[storageCount]` that holds Σ_w g_w when more than one worker
/// computed. Every ``GradientExchange`` and the ``OptimizerStep`` work on one group; it is allocated once per run.
final class WorkerGroup: @unchecked Sendable {
    let network: FlowNetwork<Float>
    let communicator: any Communicator
    let pool: WorkerPool
    let data: EpochData
    let parameters: AlignedBuffer<Float>
    let workers: [WorkerState]
    /// Σ over the workers' gradients `[storageCount]` (and the exact mode's decoded gradient).
    let reduced: AlignedBuffer<Float>
    /// The current step's rows and their division.
    var context = StepContext()
    /// Cumulative time per phase on this rank.
    var timings = StepTimings()
    /// The global batch's statistics for batch normalisation (nil when the chain has none).
    let batchStatistics: SyncBatchStatistics?
    /// Workers with rows in the current step (capacity reserved once).
    var activeWorkers: [WorkerState] = []
    /// The sum over workers as a worker job, created once (running a stored closure allocates nothing).
    lazy var reduceJob: (Int) -> Void = { [unowned self] w in self.reduceWorkers(w) }
    /// Every worker's forward and backward pass on its shard, without bucket reports.
    lazy var computeJob: (Int) -> Void = { [unowned self] w in self.computeShard(w, bucketDone: nil) }

    init(network: FlowNetwork<Float>, communicator: any Communicator, pool: WorkerPool, data: EpochData,
         parameters: AlignedBuffer<Float>, workers: [WorkerState], batchStatistics: SyncBatchStatistics? = nil) {
        self.batchStatistics = batchStatistics
        self.network = network
        self.communicator = communicator
        self.pool = pool
        self.data = data
        self.parameters = parameters
        self.workers = workers
        reduced = AlignedBuffer(count: network.layout.storageCount)
        activeWorkers.reserveCapacity(workers.count)
    }

    /// Elements of the flat parameter buffer.
    var storageCount: Int { network.layout.storageCount }

    @inline(__always) func now() -> Double { communicator.wallTime() }

    /// Worker w (default mode): gathers its shard of the batch, runs forward and backward into its own gradient
    /// buffer, and records its rows and summed NLL (normalised units, the preprocessing's log-det included).
    /// `bucketDone(b)` is called as each transform's gradient (bucket b) becomes final.
    func computeShard(_ w: Int, bucketDone: ((Int) -> Void)?) {
        let c = context
        let wk = workers[w]
        let shard = c.plan.shard(rank: communicator.rank, thread: w)
        wk.rows = shard.count
        wk.nllSum = 0
        if let statistics = batchStatistics {
            computeShardWithBatchStatistics(w, shard: shard, statistics: statistics)
            return
        }
        guard !shard.isEmpty else {
            // In backward order (K−1 … 0), as a working worker reports them: worker 0 starts each bucket as
            // soon as every worker has reported it, so reporting bucket 0 first would make it wait for itself.
            if let bucketDone { for k in network.layout.buckets.indices.reversed() { bucketDone(k) } }
            return
        }
        let p = UnsafePointer(parameters.base)
        data.gather(c.batch, shard, into: wk.input.base)
        network.forward(wk.input.base, rows: shard.count, parameters: p, workspace: wk.workspace)
        wk.nllSum = network.negativeLogLikelihood(rows: shard.count, workspace: wk.workspace) - data.preprocessingLogDet(c.batch, shard)
        network.backwardNLL(rows: shard.count, parameters: p, gradient: wk.gradient.base, accumulate: false,
                            workspace: wk.workspace, bucketDone: bucketDone)
    }

    /// ``computeShard(_:bucketDone:)`` for a chain with batch normalisation: the worker's one pass (none when its
    /// shard is empty: it still takes part in every reduction of the statistics), slot rank·T_max + w.
    func computeShardWithBatchStatistics(_ w: Int, shard: Range<Int>, statistics: SyncBatchStatistics) {
        let wk = workers[w], p = UnsafePointer(parameters.base)
        wk.passes.removeAll(keepingCapacity: true)
        if !shard.isEmpty {
            data.gather(context.batch, shard, into: wk.input.base)
            network.loadInput(wk.input.base, rows: shard.count, workspace: wk.workspace)
            wk.passes.append(BatchPass(rows: shard.count, workspace: wk.workspace, gradient: wk.gradient.base,
                                       slot: communicator.rank * statistics.slotStride + w))
        }
        network.forwardWithBatchStatistics(wk.passes, worker: w, parameters: p, statistics: statistics)
        if !shard.isEmpty {
            wk.nllSum = network.negativeLogLikelihood(rows: shard.count, workspace: wk.workspace) - data.preprocessingLogDet(context.batch, shard)
        }
        network.backwardNLLWithBatchStatistics(wk.passes, worker: w, parameters: p, statistics: statistics)
    }

    /// Rethrows a communicator error raised inside the last region's batch-statistics reductions.
    func checkBatchStatistics() throws {
        if let statistics = batchStatistics, let error = statistics.error {
            statistics.error = nil
            throw error
        }
    }

    /// The default mode's local part of a step: the batch divided over ranks and workers (no micro-batches), every
    /// worker's forward and backward pass on its shard, then ``sumOverWorkers(allowSecond:)``; timed as compute and
    /// intra-node reduction.
    /// - Throws: ``CommunicatorError`` from a reduction of batch statistics.
    func computeShardsAndSum(allowSecond: Bool) throws -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?) {
        let t0 = now()
        context.plan = ShardPlan(rows: context.batch.count, ranks: communicator.worldSize, threads: pool.count, microBatch: nil)
        pool.runPrepared(computeJob)
        let t1 = now()
        timings.compute += t1 - t0
        try checkBatchStatistics()
        let sum = sumOverWorkers(allowSecond: allowSecond)
        timings.intraNodeReduction += now() - t1
        return sum
    }

    /// Σ NLL over every worker's rows of the step (normalised units, nats).
    var nllSum: Double { workers.reduce(0.0) { $0 + $1.nllSum } }

    /// Collects the workers that computed rows this step into ``activeWorkers``.
    func collectActiveWorkers() {
        activeWorkers.removeAll(keepingCapacity: true)
        for wk in workers where wk.rows > 0 { activeWorkers.append(wk) }
    }

    /// The workers' gradients summed in worker order (element-wise, so the order is fixed). One worker's buffer is
    /// used as it is; with `allowSecond` and two workers the sum is left to the optimiser pass, which reads both
    /// buffers (the same rounding, one pass less over memory); otherwise the workers sum into ``reduced``.
    /// - Returns: the buffer holding the sum and the optional second buffer to add.
    func sumOverWorkers(allowSecond: Bool) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?) {
        collectActiveWorkers()
        if activeWorkers.count == 1 { return (activeWorkers[0].gradient.base, nil) }
        if activeWorkers.count == 2 && allowSecond { return (activeWorkers[0].gradient.base, activeWorkers[1].gradient.base) }
        pool.runPrepared(reduceJob)
        return (reduced.base, nil)
    }

    /// Worker w's range of the reduction Σ_w g_w into `reduced`.
    func reduceWorkers(_ w: Int) {
        let range = ShardPlan.part(storageCount, parts: pool.count, index: w)
        sumActiveWorkers(over: range, into: reduced.base)
    }

    /// Σ over ``activeWorkers`` of their gradients over `range`, in worker order, into `target` (same offsets);
    /// zeros when no worker has rows.
    func sumActiveWorkers(over range: Range<Int>, into target: UnsafeMutablePointer<Float>) {
        let dst = target + range.lowerBound
        guard let first = activeWorkers.first else { dst.update(repeating: 0, count: range.count); return }
        dst.update(from: first.gradient.base + range.lowerBound, count: range.count)
        for wk in activeWorkers.dropFirst() { VectorKernels.add(wk.gradient.base + range.lowerBound, into: dst, count: range.count) }
    }
}
