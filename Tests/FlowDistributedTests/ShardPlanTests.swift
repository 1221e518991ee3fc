import FlowCore
import Testing
@testable import FlowDistributed

@Suite("Shard plans")
struct ShardPlanTests {
    @Test("default mode: shards tile the batch, in order, sizes within one row", arguments: [0, 1, 5, 64, 97, 256])
    func defaultShards(rows: Int) {
        for ranks in 1...4 {
            for threads in [1, 2, 3, 7] {
                let plan = ShardPlan(rows: rows, ranks: ranks, threads: threads, microBatch: nil)
                var covered: [Int] = []
                var sizes: [Int] = []
                for r in 0..<ranks { for t in 0..<threads { let s = plan.shard(rank: r, thread: t); covered += Array(s); sizes.append(s.count) } }
                #expect(covered == Array(0..<rows), "rows \(rows) R \(ranks) T \(threads)")
                #expect(sizes.max()! - sizes.min()! <= 1 + (rows % ranks == 0 ? 0 : 1))
                #expect(sizes.max()! <= plan.maxPassRows)
            }
        }
    }

    @Test("exact mode: micro-batches are layout-independent and dealt whole", arguments: [1, 16, 63, 64, 65, 256])
    func microBatches(rows: Int) {
        let reference = ShardPlan(rows: rows, ranks: 1, threads: 1, microBatch: 16)
        let parts = (0..<reference.microBatchCount).map { reference.microBatchRows($0) }
        #expect(parts.flatMap { Array($0) } == Array(0..<rows))
        for ranks in 1...3 {
            for threads in [1, 2, 7] {
                let plan = ShardPlan(rows: rows, ranks: ranks, threads: threads, microBatch: 16)
                var seen: [Int] = []
                for r in 0..<ranks { for t in 0..<threads { seen += Array(plan.microBatches(rank: r, thread: t)) } }
                #expect(seen == Array(0..<reference.microBatchCount))
                #expect((0..<plan.microBatchCount).map { plan.microBatchRows($0) } == parts)
            }
        }
    }
}

@Suite("Worker pool")
struct WorkerPoolTests {
    @Test("every task runs with flush-to-zero, and the caller's setting is restored", arguments: [1, 2, 5])
    func flushToZero(workers: Int) {
        FloatEnvironment.disableFlushToZero()
        let flags = AlignedBuffer<Int32>(count: workers)
        let results = AlignedBuffer<Float>(count: workers)
        let tiny: Float = 1e-30
        WorkerPool(count: workers).run { w in
            flags[w] = FloatEnvironment.flushesToZero ? 1 : 0
            // 1e-30 · 1e-10 = 1e-40 is subnormal: flushed to 0 under FTZ.
            results[w] = tiny * Float(1e-10 + Double(w) * 0)
        }
        #expect(flags.array == Array(repeating: 1, count: workers))
        #expect(results.array == Array(repeating: 0, count: workers))
        #expect(!FloatEnvironment.flushesToZero)
        #expect(tiny * 1e-10 > 0)  // gradual underflow is back on this thread
    }
}
