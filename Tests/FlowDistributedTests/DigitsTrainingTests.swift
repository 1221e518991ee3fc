import FlowCore
import Foundation
import Testing
@testable import FlowDistributed

@Suite("Training on digits")
struct DigitsTrainingTests {
    @Test("a short run beats a diagonal Gaussian fitted to the same preprocessed data (validation bits/dim)")
    func beatsDiagonalGaussian() throws {
        let c = try BundledDataset.digits.load()
        let split = DataSplit(rows: c.features.rows, validationFraction: 0.2, seed: 0)
        let train = c.features.gatherRows(split.train), validation = c.features.gatherRows(split.validation)
        let pre = Preprocessing.digits()
        var config = TrainingConfiguration(
            model: FlowConfiguration(dim: 64, couplings: 4, hidden: 64, hiddenLayers: 2, maskScheme: .checkerboard,
                                     imageShape: [8, 8], preprocessing: pre),
            epochs: 3, batchSize: 64, learningRate: 1e-3, seed: 0)
        config.validationFraction = 0.2
        let (trainPre, _) = try pre.forward(train, noise: Preprocessing.noise(seed: 0, substream: 0, rows: train.rows, dim: 64))
        let trainer = try DataParallelTrainer(configuration: config, normalizer: try Normalizer<Float>.fit(trainPre), train: train,
                                              validation: validation, communicator: SingleProcessCommunicator(), threads: 2)
        while !trainer.finished { _ = try trainer.runEpoch() }
        let flowBits = try #require(try trainer.validationNLL()) / (64 * log(2.0))
        // The baseline: a diagonal Gaussian fitted on the preprocessed training split, scored on the validation
        // split with the same dequantisation noise the trainer uses for validation, log-dets included.
        let gaussian = try GaussianBaseline(fitting: trainPre, diagonal: true)
        let noise = Preprocessing.noise(seed: 0, substream: Preprocessing.evaluationSubstream, rows: validation.rows, dim: 64)
        let (z, preLogDet) = try pre.forward(validation, noise: noise)
        let ld = gaussian.logDensity(z)
        let gaussianBits = -(0..<validation.rows).reduce(0.0) { $0 + ld[$1] + preLogDet[$1] } / Double(validation.rows) / (64 * log(2.0))
        #expect(abs(gaussianBits - 2.89) < 0.05, "diagonal Gaussian \(gaussianBits) bits/dim (reference 2.90)")
        #expect(flowBits < gaussianBits - 0.1, "flow \(flowBits) vs diagonal Gaussian \(gaussianBits) bits/dim")
        #expect(flowBits > log2(17.0) - 3)  // sanity: not absurdly low
    }
}
