import FlowCore

/// Runs a trained model over many rows on every rank and worker, and gathers the results on every rank.
///
/// Rows are cut into fixed chunks of ``chunkRows`` by their global index; whole chunks are dealt to ranks
/// and then to workers. Because a chunk's computation does not depend on who runs it, results are the same
/// bits under every ranks × threads layout; and a row's sampling noise depends only on (seed, row).
public final class ShardedEvaluator: @unchecked Sendable {
    /// Rows per chunk.
    public static let chunkRows = 256
    let network: FlowNetwork<Float>
    let communicator: any Communicator
    let pool: WorkerPool
    let workspaces: [FlowWorkspace<Float>]

    /// An evaluator with one workspace per worker.
    public init(network: FlowNetwork<Float>, communicator: any Communicator, pool: WorkerPool) {
        self.network = network
        self.communicator = communicator
        self.pool = pool
        workspaces = (0..<pool.count).map { _ in FlowWorkspace(configuration: network.configuration, capacity: Self.chunkRows) }
    }

    /// The chunks of this rank and, within them, the rows, for `rows` global rows.
    func myRows(_ rows: Int) -> Range<Int> {
        let chunks = (rows + Self.chunkRows - 1) / Self.chunkRows
        let mine = ShardPlan.part(chunks, parts: communicator.worldSize, index: communicator.rank)
        return min(rows, mine.lowerBound * Self.chunkRows)..<min(rows, mine.upperBound * Self.chunkRows)
    }

    /// Runs `body(chunkRange, workspace)` over this rank's chunks, in parallel over the workers.
    func forEachChunk(_ rows: Int, _ body: (Range<Int>, FlowWorkspace<Float>) -> Void) {
        let mine = myRows(rows)
        let firstChunk = mine.lowerBound / Self.chunkRows
        let chunkCount = (mine.count + Self.chunkRows - 1) / Self.chunkRows
        pool.run { w in
            for c in ShardPlan.part(chunkCount, parts: pool.count, index: w) {
                let start = (firstChunk + c) * Self.chunkRows
                body(start..<min(mine.upperBound, start + Self.chunkRows), workspaces[w])
            }
        }
    }

    /// Per-row log-density in normalised units, log N(f(u); 0, I) + log|det ∂f/∂u| (nats), of `rows` rows
    /// of u `[rows, D]` (the same data on every rank), gathered on every rank.
    /// - Throws: ``CommunicatorError``.
    public func logDensity(_ u: UnsafePointer<Float>, rows: Int, parameters p: UnsafePointer<Float>) throws -> [Double] {
        let D = network.dim, K = network.couplingCount
        let mine = myRows(rows)
        let out = AlignedBuffer<Double>(count: mine.count)
        forEachChunk(rows) { range, ws in
            network.forward(u + range.lowerBound * D, rows: range.count, parameters: p, workspace: ws)
            let z = ws.couplingInput(K)
            for i in 0..<range.count {
                out[range.lowerBound - mine.lowerBound + i] = StandardNormal.logDensity(z + i * D, dim: D) + Double(ws.logDet[i])
            }
        }
        return try communicator.allgather(out.array)
    }

    /// Latents z = f(u) `[rows, D]` and per-row coupling log-dets, gathered on every rank.
    public func encode(_ u: UnsafePointer<Float>, rows: Int, parameters p: UnsafePointer<Float>) throws -> (z: [Float], logDet: [Double]) {
        let D = network.dim, K = network.couplingCount
        let mine = myRows(rows)
        let z = AlignedBuffer<Float>(count: mine.count * D)
        let ld = AlignedBuffer<Double>(count: mine.count)
        forEachChunk(rows) { range, ws in
            network.forward(u + range.lowerBound * D, rows: range.count, parameters: p, workspace: ws)
            let at = range.lowerBound - mine.lowerBound
            (z.base + at * D).update(from: ws.couplingInput(K), count: range.count * D)
            for i in 0..<range.count { ld[at + i] = Double(ws.logDet[i]) }
        }
        return (try communicator.allgather(z.array), try communicator.allgather(ld.array))
    }

    /// u = f⁻¹(z) `[rows, D]` in normalised units, gathered on every rank.
    public func decode(_ z: UnsafePointer<Float>, rows: Int, parameters p: UnsafePointer<Float>) throws -> [Float] {
        let D = network.dim
        let mine = myRows(rows)
        let u = AlignedBuffer<Float>(count: mine.count * D)
        forEachChunk(rows) { range, ws in
            let at = range.lowerBound - mine.lowerBound
            network.inverse(z + range.lowerBound * D, rows: range.count, parameters: p, workspace: ws, output: u.base + at * D)
        }
        return try communicator.allgather(u.array)
    }

    /// `count` samples u = f⁻¹(z), z ~ N(0, τ²I) with row i's noise a function of (seed, i) only, in
    /// normalised units `[count, D]`, gathered on every rank.
    public func sample(count: Int, seed: UInt64, temperature: Double, parameters p: UnsafePointer<Float>) throws -> [Float] {
        let D = network.dim
        let mine = myRows(count)
        let u = AlignedBuffer<Float>(count: mine.count * D)
        forEachChunk(count) { range, ws in
            let at = u.base + (range.lowerBound - mine.lowerBound) * D
            StandardNormal.sample(rows: range.count, dim: D, seed: seed, temperature: temperature,
                                  firstRow: range.lowerBound, into: at)
            network.inverse(at, rows: range.count, parameters: p, workspace: ws, output: at)
        }
        return try communicator.allgather(u.array)
    }
}
