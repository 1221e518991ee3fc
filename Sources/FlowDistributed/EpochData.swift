import FlowCore

/// The training split as the steps see it: the epoch's order of the rows and, for discrete data, the epoch's
/// dequantisation. Every rank holds the whole split and computes the same order, so a global batch is the same
/// rows on every rank without communication.
///
/// - Order: epoch e visits the rows in the permutation drawn from (seed, purpose `.shuffle`, substream e); batch b of
///   the epoch is positions b·B ..< min(N, (b+1)·B) of it (the last batch may be partial).
/// - Dequantisation (a configuration with ``Preprocessing/dequantizeLogit(levels:alpha:)``): at the first step of
///   epoch e the discrete rows get fresh uniform noise (purpose `.dequantization`, substream e) and the logit
///   transform, in Float64, once for the epoch; their per-row log-det is kept for the NLL.
///
/// Buffers: ``values`` `[N, W]` (Float, the flow's input rows: W = D, or D + K for a conditional flow whose rows
/// are [x, c]; the chain normalises them) and the per-row preprocessing log-det `[N]` (nats; the preprocessing
/// acts on x only). A steady-state step allocates nothing; the first step of an epoch allocates
/// the permutation.
public final class EpochData: @unchecked Sendable {
    /// Rows N of the training split.
    public let rows: Int
    /// Values per row W (D, or D + K with a context).
    public let dim: Int
    /// Features D of x (the preprocessed part of a row).
    let features: Int
    /// Global batch size B.
    public let batchSize: Int
    /// The flow's input rows `[N, W]` for the current epoch.
    public let values: AlignedBuffer<Float>
    let seed: UInt64
    let preprocessing: Preprocessing
    /// The discrete rows (with a preprocessing), re-dequantised every epoch into `values`.
    let raw: Matrix<Double>?
    /// Per-row log-det of the preprocessing for the current epoch `[N]` (zeros without one).
    let preprocessingLogDets: AlignedBuffer<Double>
    var permutation: [Int] = []
    var permutationEpoch = -1

    /// The split `train` `[N, W]` (data units; rows [x, c] for a conditional model) of a run with `configuration`.
    init(train: Matrix<Double>, configuration: TrainingConfiguration) {
        rows = train.rows
        dim = train.columns
        features = configuration.model.dim
        batchSize = configuration.batchSize
        seed = configuration.seed
        preprocessing = configuration.model.preprocessing
        preprocessingLogDets = AlignedBuffer(count: train.rows)
        if preprocessing == .none {
            raw = nil
            values = AlignedBuffer(train.converted(to: Float.self).values)
        } else {
            raw = train
            values = AlignedBuffer(count: train.rows * train.columns)  // filled per epoch
        }
    }

    /// Optimiser steps per epoch: ⌈N / B⌉.
    public var batchesPerEpoch: Int { TrainingConfiguration.stepsPerEpoch(trainingRows: rows, batchSize: batchSize) }

    /// The positions in the split of step `step`'s rows (a slice of its epoch's permutation); prepares the epoch
    /// (order, dequantisation) at its first step.
    func batch(forStep step: Int) -> ArraySlice<Int> {
        let e = step / batchesPerEpoch, b = step % batchesPerEpoch
        if permutationEpoch != e {
            permutation = RandomStream(seed: seed, purpose: .shuffle, substream: UInt32(truncatingIfNeeded: e)).permutation(rows)
            permutationEpoch = e
            if let raw { dequantize(raw, epoch: e) }
        }
        return permutation[(b * batchSize)..<min(rows, (b + 1) * batchSize)]
    }

    /// Epoch e's rows: fresh dequantisation noise and the preprocessing (once per epoch).
    func dequantize(_ raw: Matrix<Double>, epoch e: Int) {
        let noise = Preprocessing.noise(seed: seed, substream: UInt32(truncatingIfNeeded: e), rows: raw.rows, dim: features)
        // The data were checked against the levels when the run was set up, so the transform cannot fail here.
        guard let (pre, ld) = try? preprocessing.forward(rows: raw, features: features, noise: noise) else {
            preconditionFailure("data outside the declared levels")
        }
        values.assign(pre.converted(to: Float.self).values)
        preprocessingLogDets.assign(ld)
    }

    /// Σ of the preprocessing log-det over the rows at `positions` of `batch` (0 without a preprocessing).
    @inline(__always)
    func preprocessingLogDet(_ batch: ArraySlice<Int>, _ positions: Range<Int>) -> Double {
        guard raw != nil else { return 0 }
        var s = 0.0
        for pos in positions { s += preprocessingLogDets[batch[batch.startIndex + pos]] }
        return s
    }

    /// Copies the rows at `positions` of `batch` into `input` `[positions.count, W]`.
    @inline(__always)
    func gather(_ batch: ArraySlice<Int>, _ positions: Range<Int>, into input: UnsafeMutablePointer<Float>) {
        let D = dim, start = batch.startIndex
        for (i, pos) in positions.enumerated() {
            (input + i * D).update(from: values.base + batch[start + pos] * D, count: D)
        }
    }
}
