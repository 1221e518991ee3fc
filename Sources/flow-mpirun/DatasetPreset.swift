import FlowCore

/// Default training settings per data set, used for every flag the user does not give.
///
/// - synthetic 2-D sets: the seed (6 alternating couplings, 4×256, Adam 1e-4, batch 256, 300 epochs).
/// - `digits`: 8 checkerboard couplings on the 8×8 pixel grid, s/t 3×256, Adam 1e-3, batch 64, 40 epochs,
///   dequantisation of the 17 levels + logit(α = 0.05); the best epoch by validation NLL is kept (the model
///   overfits after 10–20 epochs). Measured: batch 64 reached 2.23 bits/dim, batch 128 2.26.
/// - `wine` (178 rows × 13): 6 checkerboard couplings, s/t 2×64, Adam 1e-3, batch 32, 100 epochs;
///   `breast-cancer` (569 × 30): 6 couplings, s/t 1×32, Adam 1e-3, batch 64, 200 epochs. Both overfit quickly
///   (hundreds of rows): the best validation epoch is kept. Larger networks were measured worse.
/// - `fashion-mnist`: the paper's multi-scale convolutional flow `realnvp-small` on 1×28×28, dequantisation of the
///   256 levels + logit(α = 0.05), Adam 1e-3, batch 64, 10 epochs, no parameter average, 10% of the training images
///   for validation (the official 10,000 test images are evaluate's).
enum DatasetPreset {
    static func training(for spec: DataSpec) -> TrainingConfiguration {
        var t = TrainingConfiguration()
        // The model the tool evaluates and saves is the parameters' moving average (Keras's use_ema with
        // ema_momentum 0.99): with the seed's constant learning rate the trained parameters wander, and the
        // NLL on fresh data swings by ±0.1 nats from epoch to epoch; training itself is the seed's.
        t.emaMomentum = 0.99
        switch spec.bundled {
        case .digits:
            t.model = FlowConfiguration(dim: 64, couplings: 8, hidden: 256, hiddenLayers: 3, maskScheme: .checkerboard,
                                        imageShape: [8, 8], preprocessing: .digits())
            t.learningRate = 1e-3
            t.batchSize = 64
            t.epochs = 40
        case .wine:
            t.model = FlowConfiguration(dim: 13, couplings: 6, hidden: 64, hiddenLayers: 2, maskScheme: .checkerboard)
            t.learningRate = 1e-3
            t.batchSize = 32
            t.epochs = 100
        case .breastCancer:
            t.model = FlowConfiguration(dim: 30, couplings: 6, hidden: 32, hiddenLayers: 1, maskScheme: .checkerboard)
            t.learningRate = 1e-3
            t.batchSize = 64
            t.epochs = 200
        case .fashionMNIST:
            t.model = .imageFlow(.realNVPSmall(input: ImageShape(channels: 1, height: 28, width: 28)),
                                 preprocessing: .dequantizeLogit(levels: 256, alpha: 0.05))
            t.learningRate = 1e-3
            t.batchSize = 64
            t.epochs = 10
            t.validationFraction = 0.1
            // The trained parameters are the model (as in PyTorch): measured better than their average after an epoch
            // (BENCHMARKS.md §13); --ema-momentum 0.99 brings the average back.
            t.emaMomentum = nil
        case nil:
            break
        }
        return t
    }
}
