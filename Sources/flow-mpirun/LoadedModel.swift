import ArgumentParser
import FlowCore
import FlowDistributed
import Foundation

/// A checkpoint loaded on every rank, with sharded inference over this rank's workers.
struct LoadedModel {
    let checkpoint: Checkpoint
    let evaluator: ShardedEvaluator
    let parameters: AlignedBuffer<Float>
    var model: RealNVP<Float> { checkpoint.model }
    var dim: Int { checkpoint.model.dim }

    init(path: String, ctx: RunContext, threads: Int) throws {
        checkpoint = try Checkpoint.load(path: path)
        parameters = AlignedBuffer(checkpoint.model.parameters)
        evaluator = ShardedEvaluator(network: checkpoint.model.network, communicator: ctx.communicator, pool: WorkerPool(count: threads))
        // Every rank must hold the same model (its path may be spelt per host): compared at the set-up agreement.
        ctx.sharedContent.append("model " + Self.fingerprint(checkpoint))
    }

    /// The model's fingerprint in the ranks' agreement: its parameters' (a `[1, count]` matrix), 16 hex digits.
    static func fingerprint(_ checkpoint: Checkpoint) -> String {
        let p = checkpoint.model.parameters
        return TrainingRun.hex(Matrix(rows: 1, columns: p.count, values: p).fingerprint)
    }

    /// The data spec stored with the checkpoint by `train`, if any.
    var dataSpec: DataSpec? {
        checkpoint.metadata["data"].flatMap { try? JSONDecoder().decode(DataSpec.self, from: Data($0.utf8)) }
    }

    /// The shape `[C, H, W]` of the model's rows as images: an image flow's input, or a model trained with an image
    /// shape `[H, W]` (C = 1) whose D = H·W; nil otherwise.
    var imageShape: ImageShape? {
        let c = model.configuration
        if let image = c.image { return image.input }
        if let s = c.imageShape, s.count == 2, s[0] * s[1] == dim { return ImageShape(channels: 1, height: s[0], width: s[1]) }
        return nil
    }

    /// The flow's input space → data space: undo the preprocessing (Float `[n, D]`).
    func dataSpace(_ x: [Float]) -> Matrix<Float> {
        model.configuration.preprocessing.dataSpace(Matrix(rows: x.count / dim, columns: dim, values: x)).converted()
    }

    /// Checks that `x` has the model's width.
    func checkWidth(_ rows: Int, _ columns: Int, source: String) throws {
        guard columns == dim else {
            let K = checkpoint.model.contextFeatures
            let hint = K > 0 && columns == dim + K
                ? " (its features only: this conditional model takes its \(K) context value\(K == 1 ? "" : "s") per row from --context FILE)" : ""
            throw FlowIOError(path: source, message: "has \(columns) column\(columns == 1 ? "" : "s"); the model expects D = \(dim)\(hint)")
        }
        guard rows > 0 else { throw FlowIOError(path: source, message: "has no rows") }
    }
}
