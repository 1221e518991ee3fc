import CFlowSupport
import Foundation
import FlowCore

/// The allreduce overlapped with the backward pass (PyTorch DDP's and Horovod's gradient buckets), for ranks on
/// several hosts: one bucket per transform with parameters (``ParameterLayout/buckets``). As each worker's backward
/// pass finishes a bucket it says so; the coordinating thread (worker 0), inside its own backward pass, sums a
/// bucket over the workers as soon as all of them have finished it and starts its non-blocking allreduce, from the
/// last transform down, so that the transfer of late layers runs while early layers are still differentiated.
/// The sums are the same element-wise sums in worker order as the blocking exchange's, so the result is too.
final class OverlappedBucketExchange: GradientExchange {
    let group: WorkerGroup
    let mode = GradientExchangeMode.overlappedBuckets
    /// Per bucket: how many workers have finished it `[buckets]`.
    let bucketCounters: AlignedBuffer<Int>
    /// The allreduces in flight, per bucket.
    var bucketRequests: [CollectiveRequest?]
    /// Buckets started this step (from the last down).
    var bucketsStarted = 0
    /// A communicator error raised while starting buckets inside the backward pass (worker 0), rethrown after it.
    var bucketError: Error?
    /// The buffer the buckets were summed into (a worker's own when only one has rows).
    var target: UnsafeMutablePointer<Float>?
    /// Worker w's report of a finished bucket, made once (a closure made per step would allocate).
    lazy var bucketCallbacks: [(Int) -> Void] = (0..<group.pool.count).map { w in
        { [unowned self] b in self.bucketFinished(b, worker: w) }
    }
    lazy var computeJob: (Int) -> Void = { [unowned self] w in self.group.computeShard(w, bucketDone: self.bucketCallbacks[w]) }

    init(group: WorkerGroup) {
        self.group = group
        bucketCounters = AlignedBuffer(count: group.network.layout.buckets.count)
        bucketRequests = Array(repeating: nil, count: group.network.layout.buckets.count)
    }

    func computeGradient() throws -> ReducedGradient {
        _ = bucketCallbacks  // made here, on the coordinating thread, before any worker reads them
        let g = group, t0 = g.now()
        let R = g.communicator.worldSize, n = g.context.batch.count
        g.context.plan = ShardPlan(rows: n, ranks: R, threads: g.pool.count, microBatch: nil)
        for k in 0..<bucketCounters.count { flow_atomic_store(&bucketCounters.base[k], 0) }
        bucketsStarted = 0
        bucketError = nil
        g.pool.runPrepared(computeJob)
        let t1 = g.now()
        g.timings.compute += t1 - t0
        if let error = bucketError { bucketError = nil; throw error }
        try startBuckets(through: 0)  // buckets the coordinator has not reached yet
        let t2 = g.now()
        for k in bucketRequests.indices { if let r = bucketRequests[k] { try g.communicator.wait(r) } }
        g.timings.allreduce += g.now() - t2
        return ReducedGradient(gradient: target ?? g.reduced.base, second: nil, scale: 1 / Double(n),
                               owned: 0..<g.storageCount, nonFinite: false)
    }

    /// Worker w finished bucket k's backward pass. The coordinating thread (worker 0) then starts the allreduce of
    /// every bucket that all workers have finished, from the last down.
    func bucketFinished(_ k: Int, worker w: Int) {
        flow_atomic_add(&bucketCounters.base[k], 1)
        guard w == 0, bucketError == nil else { return }
        do { try startBuckets(through: k) } catch { bucketError = error }  // rethrown after the parallel region
    }

    /// Coordinating thread: for buckets K−1 … k (the backward order) not yet started, waits until every worker
    /// has finished the bucket, sums the workers' gradients over it (worker order), and starts its non-blocking
    /// allreduce; also drives the progress of those in flight.
    func startBuckets(through k: Int) throws {
        let g = group
        let K = bucketCounters.count
        let ranges = g.network.layout.buckets
        while bucketsStarted < K - k {
            let b = K - 1 - bucketsStarted
            var spins = 0
            while flow_atomic_load(&bucketCounters.base[b]) < g.pool.count {
                spins += 1
                if spins < 1000 { flow_cpu_relax() } else { sched_yield() }
            }
            let range = ranges[b]
            g.collectActiveWorkers()
            let sum: UnsafeMutablePointer<Float>
            if g.activeWorkers.count == 1 {
                sum = g.activeWorkers[0].gradient.base
            } else {
                sum = g.reduced.base
                g.sumActiveWorkers(over: range, into: sum)
            }
            target = sum
            bucketRequests[b] = try g.communicator.startAllreduceSum(UnsafeMutableBufferPointer(start: sum + range.lowerBound, count: range.count))
            bucketsStarted += 1
            for r in bucketRequests where r != nil { _ = try g.communicator.test(r!) }
        }
    }
}
