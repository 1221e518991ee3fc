/// How the rows of one global batch are divided among ranks and worker threads.
///
/// - Default mode: the batch's n rows are split into R balanced contiguous rank slices, each into T
///   balanced contiguous worker shards (shard sizes differ by at most one row).
/// - Exact mode (`--reproducible`): the batch is cut into micro-batches of `microBatch` rows (the last may
///   be shorter), whose composition does not depend on the layout; whole micro-batches are dealt to ranks,
///   then to workers. Each micro-batch's gradient is then the same bits under every layout.
public struct ShardPlan: Sendable, Equatable {
    /// Rows in this batch (n ≤ global batch size; the epoch's last batch may be partial).
    public let rows: Int
    /// World size R.
    public let ranks: Int
    /// Workers per rank T.
    public let threads: Int
    /// Micro-batch size in exact mode, nil in default mode.
    public let microBatch: Int?

    /// A plan for one batch.
    public init(rows: Int, ranks: Int, threads: Int, microBatch: Int?) {
        precondition(rows >= 0 && ranks >= 1 && threads >= 1)
        precondition(microBatch.map { $0 >= 1 } ?? true)
        self.rows = rows
        self.ranks = ranks
        self.threads = threads
        self.microBatch = microBatch
    }

    /// The i-th of `parts` balanced contiguous pieces of 0 ..< n: [⌊i·n/parts⌋, ⌊(i+1)·n/parts⌋).
    @inlinable
    public static func part(_ n: Int, parts: Int, index i: Int) -> Range<Int> {
        (i * n / parts)..<((i + 1) * n / parts)
    }

    /// Number of micro-batches in exact mode (0 in default mode).
    public var microBatchCount: Int {
        guard let m = microBatch else { return 0 }
        return (rows + m - 1) / m
    }

    /// The row range (positions within the batch) of micro-batch j in exact mode.
    public func microBatchRows(_ j: Int) -> Range<Int> {
        let m = microBatch!
        return (j * m)..<min(rows, (j + 1) * m)
    }

    /// Default mode: the contiguous rows of the batch that worker `thread` of `rank` processes.
    public func shard(rank: Int, thread: Int) -> Range<Int> {
        let r = ShardPlan.part(rows, parts: ranks, index: rank)
        let t = ShardPlan.part(r.count, parts: threads, index: thread)
        return (r.lowerBound + t.lowerBound)..<(r.lowerBound + t.upperBound)
    }

    /// Exact mode: the micro-batch indices worker `thread` of `rank` processes.
    public func microBatches(rank: Int, thread: Int) -> Range<Int> {
        let r = ShardPlan.part(microBatchCount, parts: ranks, index: rank)
        let t = ShardPlan.part(r.count, parts: threads, index: thread)
        return (r.lowerBound + t.lowerBound)..<(r.lowerBound + t.upperBound)
    }

    /// The most rows one worker processes in one pass (its workspace capacity for this batch).
    public var maxPassRows: Int {
        if let m = microBatch { return min(m, max(rows, 1)) }
        let perRank = (rows + ranks - 1) / ranks
        return max(1, (perRank + threads - 1) / threads)
    }
}
