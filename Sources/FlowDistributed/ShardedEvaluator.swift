import FlowCore
import Foundation

/// Runs a trained model over many rows on every rank and worker, and gathers the results on every rank.
///
/// Rows are cut into fixed chunks of ``chunkRows`` by their global index; whole chunks are dealt to ranks
/// and then to workers. Because a chunk's computation does not depend on who runs it, results are the same
/// bits under every ranks × threads layout; and a row's sampling noise depends only on (seed, row).
public final class ShardedEvaluator: @unchecked Sendable {
    /// Rows per chunk: 256, fewer for networks whose workspace per row is large (``FlowNetwork/chunkRows(limit:)``).
    public let chunkRows: Int
    let network: FlowNetwork<Float>
    let communicator: any Communicator
    let pool: WorkerPool
    let workspaces: [FlowWorkspace<Float>]

    /// An evaluator with one workspace per worker.
    public init(network: FlowNetwork<Float>, communicator: any Communicator, pool: WorkerPool) {
        self.network = network
        self.communicator = communicator
        self.pool = pool
        let chunkRows = network.chunkRows(limit: 256)
        self.chunkRows = chunkRows
        workspaces = (0..<pool.count).map { _ in network.makeWorkspace(capacity: chunkRows) }
    }

    /// The chunks of this rank and, within them, the rows, for `rows` global rows.
    func myRows(_ rows: Int) -> Range<Int> {
        let chunks = (rows + chunkRows - 1) / chunkRows
        let mine = ShardPlan.part(chunks, parts: communicator.worldSize, index: communicator.rank)
        return min(rows, mine.lowerBound * chunkRows)..<min(rows, mine.upperBound * chunkRows)
    }

    /// Runs `body(chunkRange, workspace)` over this rank's chunks, in parallel over the workers.
    func forEachChunk(_ rows: Int, _ body: (Range<Int>, FlowWorkspace<Float>) -> Void) {
        let mine = myRows(rows)
        let firstChunk = mine.lowerBound / chunkRows
        let chunkCount = (mine.count + chunkRows - 1) / chunkRows
        pool.run { w in
            for c in ShardPlan.part(chunkCount, parts: pool.count, index: w) {
                let start = (firstChunk + c) * chunkRows
                body(start..<min(mine.upperBound, start + chunkRows), workspaces[w])
            }
        }
    }

    /// Per-row log-density up to the chain's constant log-det, log N(f(x); 0, I) + per-row log|det ∂f/∂x| (nats;
    /// add ``FlowNetwork/constantLogDet`` for log p(x)), of `rows` rows of x `[rows, D]` (the flow's input: the
    /// data after any preprocessing; rows [x, c] `[rows, D + K]` for a conditional flow, giving log p(x | c); the
    /// same on every rank), gathered on every rank.
    /// - Throws: ``CommunicatorError``.
    public func logDensity(_ x: UnsafePointer<Float>, rows: Int, parameters p: UnsafePointer<Float>) throws -> [Double] {
        let D = network.dim, W = network.inputWidth
        let mine = myRows(rows)
        let out = AlignedBuffer<Double>(count: mine.count)
        forEachChunk(rows) { range, ws in
            network.forward(x + range.lowerBound * W, rows: range.count, parameters: p, workspace: ws)
            let z = network.latent(in: ws), logDet = network.logDet(in: ws)
            for i in 0..<range.count {
                out[range.lowerBound - mine.lowerBound + i] = StandardNormal.logDensity(z + i * D, dim: D) + Double(logDet[i])
            }
        }
        return try communicator.allgather(out.array)
    }

    /// A class-conditional flow's per-row log Σ_c π_c exp(ℓ_c) up to the chain's constant log-det, ℓ_c being
    /// ``logDensity(_:rows:parameters:)`` of x `[rows, D]` with the one-hot context of class c (nats; add
    /// ``FlowNetwork/constantLogDet`` for log Σ_c π_c p(x | c), the flow's marginal density). Classes with π_c = 0
    /// are skipped. Gathered on every rank.
    /// - Parameter weights: π_c `[C]`, C = the flow's context width, summing to 1.
    /// - Throws: ``CommunicatorError``.
    public func classMixtureLogDensity(_ x: UnsafePointer<Float>, rows: Int, weights: [Double], parameters p: UnsafePointer<Float>) throws -> [Double] {
        let D = network.dim, C = network.contextFeatures
        precondition(C == weights.count && C > 0, "classMixtureLogDensity: \(weights.count) weights for a context of \(C)")
        var terms: [[Double]] = []
        var input = [Float](repeating: 0, count: rows * (D + C))
        for k in 0..<C where weights[k] > 0 {
            for i in 0..<rows {
                for j in 0..<D { input[i * (D + C) + j] = x[i * D + j] }
                for c in 0..<C { input[i * (D + C) + D + c] = c == k ? 1 : 0 }
            }
            let ld = try input.withUnsafeBufferPointer { try logDensity($0.baseAddress!, rows: rows, parameters: p) }
            terms.append(ld.map { $0 + log(weights[k]) })
        }
        return (0..<rows).map { i in
            let m = terms.map { $0[i] }.max() ?? -.infinity
            return m.isFinite ? m + log(terms.reduce(0) { $0 + exp($1[i] - m) }) : m
        }
    }

    /// Latents z = f(x) `[rows, D]` (x `[rows, D]`, or rows [x, c] `[rows, D + K]` for a conditional flow) and the
    /// per-row log-dets (without the constant), gathered on every rank.
    public func encode(_ x: UnsafePointer<Float>, rows: Int, parameters p: UnsafePointer<Float>) throws -> (z: [Float], logDet: [Double]) {
        let D = network.dim, W = network.inputWidth
        let mine = myRows(rows)
        let z = AlignedBuffer<Float>(count: mine.count * D)
        let ld = AlignedBuffer<Double>(count: mine.count)
        forEachChunk(rows) { range, ws in
            network.forward(x + range.lowerBound * W, rows: range.count, parameters: p, workspace: ws)
            let at = range.lowerBound - mine.lowerBound
            (z.base + at * D).update(from: network.latent(in: ws), count: range.count * D)
            let logDet = network.logDet(in: ws)
            for i in 0..<range.count { ld[at + i] = Double(logDet[i]) }
        }
        return (try communicator.allgather(z.array), try communicator.allgather(ld.array))
    }

    /// x = f⁻¹(z) `[rows, D]` (the flow's input space: the data, before undoing any preprocessing), gathered on
    /// every rank. A conditional flow needs `context` (``ContextRows``).
    public func decode(_ z: UnsafePointer<Float>, context: ContextRows? = nil, rows: Int,
                       parameters p: UnsafePointer<Float>) throws -> [Float] {
        let D = network.dim
        let mine = myRows(rows)
        let u = AlignedBuffer<Float>(count: mine.count * D)
        forEachChunk(rows) { range, ws in
            let at = range.lowerBound - mine.lowerBound
            network.inverse(z + range.lowerBound * D, context: context?.row(range.lowerBound), contextStride: context?.stride,
                            rows: range.count, parameters: p, workspace: ws, output: u.base + at * D)
        }
        return try communicator.allgather(u.array)
    }

    /// `count` samples x = f⁻¹(z; c), z ~ N(0, τ²I) with row i's noise a function of (seed, i) only, in the flow's
    /// input space `[count, D]`, gathered on every rank. A conditional flow needs `context` (``ContextRows``).
    public func sample(count: Int, seed: UInt64, temperature: Double, context: ContextRows? = nil,
                       parameters p: UnsafePointer<Float>) throws -> [Float] {
        let D = network.dim
        let mine = myRows(count)
        let u = AlignedBuffer<Float>(count: mine.count * D)
        forEachChunk(count) { range, ws in
            let at = u.base + (range.lowerBound - mine.lowerBound) * D
            StandardNormal.sample(rows: range.count, dim: D, seed: seed, temperature: temperature,
                                  firstRow: range.lowerBound, into: at)
            network.inverse(at, context: context?.row(range.lowerBound), contextStride: context?.stride, rows: range.count,
                            parameters: p, workspace: ws, output: at)
        }
        return try communicator.allgather(u.array)
    }
}

/// The context c of a conditional flow's decode or sample pass (data units): one row `[K]` per output row, `stride`
/// values apart (K for a `[rows, K]` matrix, D + K for the context part of rows [x, c], 0 to broadcast one row to
/// every output row). The caller keeps `values` alive during the pass.
public struct ContextRows: @unchecked Sendable {
    /// The first row's first value.
    public let values: UnsafePointer<Float>
    /// Elements between consecutive rows' contexts.
    public let stride: Int

    /// Context rows at `values`, `stride` elements apart (0: one row for all).
    public init(_ values: UnsafePointer<Float>, stride: Int) {
        self.values = values
        self.stride = stride
    }

    /// Row i's context.
    func row(_ i: Int) -> UnsafePointer<Float> { values + i * stride }
}
