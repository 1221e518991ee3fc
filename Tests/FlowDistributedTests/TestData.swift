import FlowCore
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
