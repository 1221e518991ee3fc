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

    /// The same with batch normalisation instead of ActNorm.
    static let batchNormArchitecture: ImageFlowArchitecture = {
        var a = architecture
        a.actNorm = false
        a.batchNorm = true
        return a
    }()

    static func problem(rows: Int = 150, batch: Int = 40, reproducible: Bool = false, batchNorm: Bool = false) throws
        -> (TrainingConfiguration, Normalizer<Float>, Matrix<Double>, Matrix<Double>) {
        let c = try BundledDataset.digits.load()
        let all = c.features.gatherRows(0..<rows)
        let split = DataSplit(rows: rows, validationFraction: 0.2, seed: 0)
        var config = TrainingConfiguration(model: .imageFlow(batchNorm ? Self.batchNormArchitecture : Self.architecture, preprocessing: .digits()), epochs: 2,
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

    @Test("batch norm: the gradient of 1, 2 and 3 workers is that of the whole batch's statistics (lossAndGradient's training mode), not of each shard's")
    func batchNormGradientUsesTheGlobalBatch() throws {
        let p = try Self.problem(batch: 120, batchNorm: true)  // one batch = the whole training split
        let trainer = try makeTrainer(p, threads: 1)
        #expect(trainer.network.hasBatchStatistics)
        let g1 = try trainer.nextBatchGradient()
        // The rows the step saw (epoch 0's dequantisation is drawn at its first step: no ActNorm initialisation ran before).
        let rows = Matrix(rows: trainer.data.rows, columns: 64, values: Array(UnsafeBufferPointer(start: trainer.data.values.base, count: trainer.data.rows * 64)))
        var plain = p.0.model
        plain.preprocessing = .none
        let model = RealNVP(network: try FlowNetwork(plain, normalizer: p.1), parameters: trainer.parameters.array, normalizer: p.1)
        let ref = model.lossAndGradient(rows).gradient
        let scale = ref.map { abs($0) }.max()!
        // A shard's own statistics (40 of the 120 rows) give another gradient: the check below can tell them apart.
        let shard = model.lossAndGradient(rows.gatherRows(0..<40)).gradient
        #expect(zip(shard, ref).contains { abs($0 - $1) > 1e-3 * scale })
        for threads in [1, 2, 3] {
            let g = try threads == 1 ? g1 : makeTrainer(p, threads: threads).nextBatchGradient()
            #expect(!g.contains { !$0.isFinite })
            for i in ref.indices {
                #expect(abs(g[i] - ref[i]) <= 1e-5 * scale + 1e-4 * abs(ref[i]), "\(threads) workers, element \(i): \(g[i]) vs \(ref[i])")
            }
        }
    }

    @Test("batch norm: after a step the running averages moved by PyTorch's rule towards the global batch's mean and variance at each batch norm")
    func batchNormRunningAverages() throws {
        let p = try Self.problem(batch: 120, batchNorm: true)
        let trainer = try makeTrainer(p, threads: 2)
        let theta = trainer.parameters.array.map(Double.init)
        _ = try trainer.trainStep()
        let after = trainer.parameters.array
        // The rows of that step (epoch 0's dequantisation, drawn at its first step).
        let rows = Matrix(rows: trainer.data.rows, columns: 64, values: Array(UnsafeBufferPointer(start: trainer.data.values.base, count: trainer.data.rows * 64)))
        // The statistics of every batch norm's input on the whole batch, with the parameters before the step.
        var plain = p.0.model
        plain.preprocessing = .none
        let network = try FlowNetwork<Double>(plain, normalizer: Normalizer(mean: p.1.mean.map(Double.init), std: p.1.std.map(Double.init)))
        let ws = network.makeWorkspace(capacity: rows.rows)
        let statistics = LocalBatchStatistics(slots: 1, width: network.batchStatisticsWidth)
        var gradient = [Double](repeating: 0, count: theta.count)
        gradient.withUnsafeMutableBufferPointer { g in
            theta.withUnsafeBufferPointer { t in
                network.loadInput(rows.values.map(Double.init), rows: rows.rows, workspace: ws)
                network.forwardWithBatchStatistics([BatchPass(rows: rows.rows, workspace: ws, gradient: g.baseAddress!, slot: 0)],
                                                   worker: 0, parameters: t.baseAddress!, statistics: statistics)
            }
        }
        let norms = trainer.network.transforms.compactMap { $0.base as? ImageBatchNorm<Float> }
        #expect(norms.count == Self.batchNormArchitecture.couplingCount)
        for (k, norm) in norms.enumerated() {
            let totals = statistics.recorded[k], P = Double(norm.shape.pixels), C = norm.shape.channels
            let runningMean = try #require(trainer.network.layout.slot(named: norm.name + ".running_mean")).offset
            let runningVariance = try #require(trainer.network.layout.slot(named: norm.name + ".running_var")).offset
            for c in 0..<C {
                let N = totals[0] * P, mean = totals[1 + c] / N, variance = totals[1 + C + c] / N - mean * mean
                let rm = Double(after[runningMean + c]), rv = Double(after[runningVariance + c])
                #expect(abs(rm - 0.1 * mean) <= 1e-5 * max(1, abs(mean)), "\(norm.name) mean[\(c)]: \(rm) vs \(0.1 * mean)")
                #expect(abs(rv - (0.9 + 0.1 * variance * N / (N - 1))) <= 1e-5 * max(1, variance), "\(norm.name) var[\(c)]")
            }
        }
    }

    @Test("batch norm, exact mode: parameters and running averages bit-identical for 1, 2 and 3 workers (5 micro-batches per step, several per worker), and training lowers the NLL")
    func batchNormExactModeBitwise() throws {
        let p = try Self.problem(reproducible: true, batchNorm: true)
        try expectBitIdenticalTraining(threads: [1, 2, 3]) { try makeTrainer(p, threads: $0) }
    }

    @Test("batch norm needs two values per channel in every batch: a 2×2 image squeezed to 1×1 channels refuses batches (or a last batch) of one row, naming --batch-size; two rows train")
    func batchNormNeedsTwoValues() throws {
        var a = Self.batchNormArchitecture
        a.input = ImageShape(channels: 1, height: 2, width: 2)
        a.finalCouplings = 0
        let r = RandomStream(seed: 4, purpose: .auxiliary)
        let data = Matrix(rows: 21, columns: 4, values: (0..<84).map { r.normal(UInt64($0)) })
        func trainer(batch: Int) throws -> DataParallelTrainer {
            try DataParallelTrainer(configuration: TrainingConfiguration(model: .imageFlow(a, preprocessing: .none), epochs: 1, batchSize: batch,
                                                                         learningRate: 1e-3, seed: 1),
                                    normalizer: .identity(dim: 4), train: data, validation: nil, communicator: SingleProcessCommunicator(), threads: 2)
        }
        for batch in [1, 4] {  // 21 rows in batches of 4: the last has one row
            do {
                _ = try trainer(batch: batch)
                Issue.record("batch size \(batch) accepted")
            } catch let e as FlowConfigurationError {
                #expect(e.field == "batch-size" && "\(e)".contains("more than one value per channel"), "\(e)")
            }
        }
        let t = try trainer(batch: 3)
        while !t.finished { _ = try t.runEpoch() }
        let finite = t.parameters.array.allSatisfy { $0.isFinite }
        #expect(finite)
    }

    @Test("batch norm: a finite outlier that would make a running average overflow is a non-finite step (skipped, named), not a NaN in the model")
    func batchNormOutlier() throws {
        let c = try BundledDataset.digits.load()
        var rows = c.features.gatherRows(0..<100)
        let r = RandomStream(seed: 2, purpose: .auxiliary)
        for e in rows.values.indices { rows.values[e] += r.uniform(UInt64(e)) }
        rows.values[5 * 64 + 20] = 1e30
        var config = TrainingConfiguration(model: .imageFlow(Self.batchNormArchitecture, preprocessing: .none), epochs: 2, batchSize: 10,
                                           learningRate: 1e-3, seed: 3)
        config.onNonFinite = .skip
        let trainer = try DataParallelTrainer(configuration: config, normalizer: .identity(dim: 64), train: rows, validation: nil,
                                              communicator: SingleProcessCommunicator(), threads: 2)
        var skipped = 0
        while !trainer.finished { skipped += try trainer.runEpoch().skippedSteps }
        #expect(skipped == 2, "one step per epoch holds the outlier")
        #expect(trainer.lastNonFiniteLocation?.contains("the batch statistics of levels.0.checkerboard.0.batchnorm") == true,
                "\(trainer.lastNonFiniteLocation ?? "nil")")
        let finite = trainer.parameters.array.allSatisfy { $0.isFinite }
        #expect(finite)
    }
}
