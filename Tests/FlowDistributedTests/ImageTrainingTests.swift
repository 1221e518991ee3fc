import FlowCore
import Foundation
import Testing
@testable import FlowDistributed

/// The data-parallel trainer on an image flow (``ImageFlowArchitecture``): the bundled 8×8 digits as 1×8×8 images.
@Suite("Training image flows")
struct ImageTrainingTests {
    /// One level (1 + 1 couplings), 1 final coupling, ResNets of 4 channels × 1 block, ActNorm: small enough for debug builds.
    static let architecture = ImageFlowArchitecture(input: ImageShape(channels: 1, height: 8, width: 8), levels: 1,
                                                    checkerboardCouplings: 1, channelCouplings: 1, finalCouplings: 1,
                                                    channels: 4, resBlocks: 1)

    static func problem(rows: Int = 150, batch: Int = 40, reproducible: Bool = false) throws
        -> (TrainingConfiguration, Normalizer<Float>, Matrix<Double>, Matrix<Double>) {
        let c = try BundledDataset.digits.load()
        let all = c.features.gatherRows(0..<rows)
        let split = DataSplit(rows: rows, validationFraction: 0.2, seed: 0)
        var config = TrainingConfiguration(model: .imageFlow(Self.architecture, preprocessing: .digits()), epochs: 2,
                                           batchSize: batch, learningRate: 1e-3, seed: 3, reproducible: reproducible, microBatch: 8)
        config.validationFraction = 0.2
        return (config, .identity(dim: 64), all.gatherRows(split.train), all.gatherRows(split.validation))
    }

    @Test("ActNorm starts from the first global batch: after each ActNorm that batch has mean 0 and variance 1 per channel")
    func actNormInitialisation() throws {
        let p = try Self.problem()
        let trainer = try makeTrainer(p, threads: 2)
        let batch = trainer.data.batch(forStep: 0)
        let W = 64, x = AlignedBuffer<Float>(count: batch.count * W)
        trainer.data.gather(batch, 0..<batch.count, into: x.base)
        let network = trainer.network, ws = network.makeWorkspace(capacity: batch.count)
        network.forward(x.base, rows: batch.count, parameters: trainer.parameters.base, workspace: ws)
        var checked = 0
        for (i, f) in network.transforms.enumerated() {
            guard let norm = f.base as? ImageActNorm<Float> else { continue }
            let out = network.value(i + 1, in: ws), P = norm.shape.pixels
            for c in 0..<norm.shape.channels {
                var values: [Double] = []
                for r in 0..<batch.count { for q in 0..<P { values.append(Double(out[r * W + c * P + q])) } }
                let mean = values.reduce(0, +) / Double(values.count)
                let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)
                #expect(abs(mean) < 1e-4, "\(norm.name) channel \(c): mean \(mean)")
                #expect(abs(variance - 1) < 1e-3, "\(norm.name) channel \(c): variance \(variance)")
                checked += 1
            }
        }
        #expect(checked == 1 + 4 + 2)  // 1×8×8, then 4×4×4 after the squeeze and 2×4×4 after the factor-out
        #expect(trainer.parameters.array != RealNVP<Float>.initialParameters(layout: network.layout, seed: 3))
    }

    @Test("one worker's gradient equals lossAndGradient of FlowCore; T workers agree")
    func gradientMatchesReference() throws {
        let p = try Self.problem(batch: 120)  // one batch = the whole training split
        let trainer = try makeTrainer(p, threads: 1)
        // The rows the step sees: epoch 0's dequantised training split, in the flow's input space.
        let rows = Matrix(rows: trainer.data.rows, columns: 64, values: Array(UnsafeBufferPointer(start: trainer.data.values.base, count: trainer.data.rows * 64)))
        let g = try trainer.nextBatchGradient()
        // The reference starts from the preprocessed rows: the same network without the preprocessing.
        var plain = p.0.model
        plain.preprocessing = .none
        let model = RealNVP(network: try FlowNetwork(plain, normalizer: p.1), parameters: trainer.parameters.array, normalizer: p.1)
        let ref = model.lossAndGradient(rows).gradient
        #expect(!ref.contains { !$0.isFinite }, "reference: \(ref.filter { !$0.isFinite }.count) non-finite")
        #expect(!g.contains { !$0.isFinite }, "trainer: \(g.filter { !$0.isFinite }.count) non-finite")
        let scale = ref.map { abs($0) }.max()!
        for i in ref.indices { #expect(abs(g[i] - ref[i]) <= 1e-5 * scale + 1e-4 * abs(ref[i]), "element \(i): \(g[i]) vs \(ref[i])") }
        let g2 = try makeTrainer(p, threads: 3).nextBatchGradient()
        for i in ref.indices { #expect(abs(g[i] - g2[i]) <= 1e-5 * scale + 1e-4 * abs(g[i])) }
    }

    @Test("exact mode: parameters after training are bit-identical for 1, 2 and 3 workers, and training lowers the NLL")
    func exactModeBitwise() throws {
        let p = try Self.problem(reproducible: true)
        try expectBitIdenticalTraining(threads: [1, 2, 3]) { try makeTrainer(p, threads: $0) }
    }
}
