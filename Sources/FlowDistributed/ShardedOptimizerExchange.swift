import FlowCore

/// ZeRO stage 1 (Rajbhandari et al., SC 2020; PyTorch's `ZeroRedundancyOptimizer`): the workers' gradients summed
/// as in ``BlockingAllreduceExchange``, then a reduce-scatter gives each rank the summed gradient of its 1/R of the
/// parameters (``Communicator/part(count:rank:)``); the optimiser updates that part only (its per-tensor norm
/// partials summed over the ranks first), and an allgather of θ completes every replica. Adam's moments stay
/// current only on their own rank's part until ``synchronizeOptimizerState(_:)`` gathers them.
final class ShardedOptimizerExchange: GradientExchange {
    let group: WorkerGroup
    let mode = GradientExchangeMode.shardedOptimizer
    /// Whether some rank's part of Adam's moments is stale on the others.
    private(set) var momentsSharded = false

    init(group: WorkerGroup) { self.group = group }

    func computeGradient() throws -> ReducedGradient {
        let g = group
        let (sum, _) = try g.computeShardsAndSum(allowSecond: false)
        let t0 = g.now()
        try g.communicator.reduceScatterSum(UnsafeMutableBufferPointer(start: sum, count: g.storageCount))
        g.timings.allreduce += g.now() - t0
        return ReducedGradient(gradient: sum, second: nil, scale: 1 / Double(g.context.batch.count),
                               owned: g.communicator.part(count: g.storageCount, rank: g.communicator.rank), nonFinite: false)
    }

    /// Each rank summed its part of every tensor: the per-tensor sums over all ranks (a non-finite value propagates).
    func combineNormPartials(_ partials: UnsafeMutableBufferPointer<Double>) throws {
        let t0 = group.now()
        try group.communicator.allreduceSum(partials)
        group.timings.allreduce += group.now() - t0
    }

    /// Every rank updated its part of θ (and of Adam's moments): gather θ.
    func completeUpdate() throws {
        let t0 = group.now()
        try group.communicator.allgatherParts(UnsafeMutableBufferPointer(start: group.parameters.base, count: group.parameters.count))
        group.timings.allreduce += group.now() - t0
        momentsSharded = true
    }

    func synchronizeOptimizerState(_ optimizer: AdamState<Float>) throws {
        guard momentsSharded else { return }
        try group.communicator.allgatherParts(optimizer.m.buffer)
        try group.communicator.allgatherParts(optimizer.v.buffer)
        momentsSharded = false
    }

    var optimizerStateComplete: Bool { !momentsSharded }
}
