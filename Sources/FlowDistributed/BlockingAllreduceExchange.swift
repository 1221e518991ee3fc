import FlowCore

/// The default exchange on one host: every worker runs forward and backward on its shard into its own gradient
/// buffer, the workers' gradients are summed in worker order, then one blocking allreduce sums the flat gradient
/// over the ranks (none with one rank). Horovod's and PyTorch DDP's arithmetic without bucketing.
final class BlockingAllreduceExchange: GradientExchange {
    let group: WorkerGroup
    let mode = GradientExchangeMode.blockingAllreduce

    init(group: WorkerGroup) { self.group = group }

    func computeGradient() throws -> ReducedGradient {
        let g = group
        let R = g.communicator.worldSize, n = g.context.batch.count
        let (sum, second) = try g.computeShardsAndSum(allowSecond: R == 1)
        let t0 = g.now()
        if R > 1 { try g.communicator.allreduceSum(UnsafeMutableBufferPointer(start: sum, count: g.storageCount)) }
        g.timings.allreduce += g.now() - t0
        return ReducedGradient(gradient: sum, second: second, scale: 1 / Double(n), owned: 0..<g.storageCount, nonFinite: false)
    }
}
