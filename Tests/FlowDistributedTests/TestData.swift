import FlowCore
import Testing
import FlowDistributed

/// A small training problem: moons, a small model, a batch that does not divide the data.
func smallProblem(rows: Int = 203, hidden: Int = 16, batch: Int = 64, reproducible: Bool = false, microBatch: Int = 16,
                  epochs: Int = 2, l2: Double = 0, clip: Double? = nil) throws -> (TrainingConfiguration, Normalizer<Float>, Matrix<Double>, Matrix<Double>) {
    let raw = ToyDataset.moons.generate(count: rows, seed: 3)
    let split = DataSplit(rows: rows, validationFraction: 0.2, seed: 1)
    let train = raw.gatherRows(split.train)
    var config = TrainingConfiguration(model: FlowConfiguration(dim: 2, couplings: 4, hidden: hidden, hiddenLayers: 2),
                                       epochs: epochs, batchSize: batch, learningRate: 1e-3, l2: l2, clipNorm: clip, seed: 5,
                                       reproducible: reproducible, microBatch: microBatch)
    config.validationFraction = 0.2
    return (config, try Normalizer<Float>.fit(train), train, raw.gatherRows(split.validation))
}

func makeTrainer(_ p: (TrainingConfiguration, Normalizer<Float>, Matrix<Double>, Matrix<Double>), threads: Int,
                 communicator: any Communicator = SingleProcessCommunicator(), options: TrainerOptions = TrainerOptions()) throws -> DataParallelTrainer {
    try DataParallelTrainer(configuration: p.0, normalizer: p.1, train: p.2, validation: p.3, communicator: communicator, threads: threads,
                            options: options)
}

/// The small problem of a conditional flow: moons with the context [label·3 − 1, x₀/2 + 2] after x (real-valued,
/// so the context normaliser is fitted), `[N, 2 + 2]` rows.
func conditionalProblem(batch: Int = 64, reproducible: Bool = false, epochs: Int = 2)
    throws -> (TrainingConfiguration, Normalizer<Float>, Matrix<Double>, Matrix<Double>, Normalizer<Float>) {
    let rows = 203
    let x = ToyDataset.moons.generate(count: rows, seed: 3)
    let labels = ToyDataset.moons.labels(count: rows, seed: 3)!
    let c = Matrix(rows: rows, columns: 2, values: (0..<rows).flatMap { [Double(labels[$0]) * 3 - 1, x[$0, 0] / 2 + 2] })
    let raw = Matrix.concatenatingColumns(x, c)
    let split = DataSplit(rows: rows, validationFraction: 0.2, seed: 1)
    let train = raw.gatherRows(split.train)
    var config = TrainingConfiguration(model: FlowConfiguration(dim: 2, couplings: 4, hidden: 16, hiddenLayers: 2, contextFeatures: 2),
                                       epochs: epochs, batchSize: batch, learningRate: 1e-3, seed: 5,
                                       reproducible: reproducible, microBatch: 8)
    config.validationFraction = 0.2
    return (config, try Normalizer<Float>.fit(train.columns(0..<2)), train, raw.gatherRows(split.validation),
            try Normalizer<Float>.fit(train.columns(2..<4)))
}

func makeTrainer(_ p: (TrainingConfiguration, Normalizer<Float>, Matrix<Double>, Matrix<Double>, Normalizer<Float>), threads: Int)
    throws -> DataParallelTrainer {
    try DataParallelTrainer(configuration: p.0, normalizer: p.1, contextNormalizer: p.4, train: p.2, validation: p.3,
                            communicator: SingleProcessCommunicator(), threads: threads)
}

/// Trains a fresh trainer from `make(T)` to the end for each worker count T of `threads` and checks that the parameters
/// are the same bits as for the first count, and that the first run lowered its validation NLL. `check` sees every
/// finished trainer.
func expectBitIdenticalTraining(threads: [Int], _ make: (Int) throws -> DataParallelTrainer,
                                check: (DataParallelTrainer) -> Void = { _ in }) throws {
    var reference: [UInt32]?
    for T in threads {
        let t = try make(T)
        let before = try #require(try t.validationNLL())
        while !t.finished { _ = try t.runEpoch() }
        let bits = t.parameters.array.map(\.bitPattern)
        if let reference { #expect(bits == reference, "T = \(T) differs from T = \(threads[0])") } else {
            reference = bits
            let after = try #require(try t.validationNLL())
            #expect(after < before, "validation NLL \(before) → \(after)")
        }
        check(t)
    }
}
