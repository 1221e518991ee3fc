import ArgumentParser
import FlowCore

/// `--arch`: the model family.
enum ArchitectureName: String, CaseIterable, ExpressibleByArgument {
    /// The seed's MLP couplings on vectors (the default).
    case mlp
    /// The paper's multi-scale convolutional flow, 32 channels × 2 residual blocks per s/t ResNet.
    case realnvpSmall = "realnvp-small"
    /// As realnvp-small with 64 channels × 8 blocks (the paper's s/t).
    case realnvpPaper = "realnvp-paper"
}

/// The image-flow flags shared by `train` and `bench`: the preset and every size.
struct ArchitectureOptions: ParsableArguments {
    @Option(help: "Model: mlp (MLP couplings on vectors), realnvp-small or realnvp-paper (multi-scale convolutional flows on images).")
    var arch: ArchitectureName?
    @Option(help: "Image flows: feature maps of every s/t ResNet (realnvp-small 32, realnvp-paper 64).")
    var channels: Int?
    @Option(name: .customLong("res-blocks"), help: "Image flows: residual blocks of every s/t ResNet (realnvp-small 2, realnvp-paper 8).")
    var resBlocks: Int?
    @Option(help: "Image flows: scales, i.e. levels of couplings + squeeze + factor-out before the final stage (default 2; 1 for images under 16×16).")
    var scales: Int?
    @Option(name: .customLong("checkerboard-couplings"), help: "Image flows: checkerboard couplings per level (default 3).")
    var checkerboardCouplings: Int?
    @Option(name: .customLong("channel-couplings"), help: "Image flows: channel-wise couplings per level, after the squeeze (default 3).")
    var channelCouplings: Int?
    @Option(name: .customLong("final-couplings"), help: "Image flows: checkerboard couplings of the final stage (default 4).")
    var finalCouplings: Int?
    @Flag(name: .customLong("image-act-norm"), inversion: .prefixedNo, help: "Image flows: ActNorm after every coupling (default on).")
    var imageActNorm: Bool?
    @Flag(name: .customLong("image-batch-norm"), help: "Image flows: batch normalisation (the paper's §3.7) after every coupling instead of ActNorm: statistics of the global batch in training (over every thread and rank), running averages in evaluation.")
    var imageBatchNorm = false

    /// Whether an image-flow flag was given without `--arch realnvp-*`.
    var sizesGiven: Bool {
        channels != nil || resBlocks != nil || scales != nil || checkerboardCouplings != nil || channelCouplings != nil
            || finalCouplings != nil || imageActNorm != nil || imageBatchNorm
    }

    /// The image architecture these flags describe for images of `input`, on top of `base` (a preset's or a stored
    /// run's image flow, kept when no `--arch` is given); nil for `--arch mlp`, or for no `--arch` and no `base`.
    /// - Throws: `ValidationError` for image-flow sizes without an image architecture.
    func architecture(input: ImageShape, base: ImageFlowArchitecture? = nil) throws -> ImageFlowArchitecture? {
        var a: ImageFlowArchitecture
        switch arch {
        case .mlp?:
            if sizesGiven { throw ValidationError("--channels, --res-blocks, --scales, the coupling counts and the normalisation (--image-act-norm, --image-batch-norm) apply to image flows (--arch realnvp-small or realnvp-paper), not --arch mlp") }
            return nil
        case nil:
            guard let base else {
                if sizesGiven { throw ValidationError("--channels, --res-blocks, --scales, the coupling counts and the normalisation (--image-act-norm, --image-batch-norm) of image flows need --arch realnvp-small or realnvp-paper") }
                return nil
            }
            a = base
        case .realnvpSmall?: a = .realNVPSmall(input: input)
        case .realnvpPaper?: a = .realNVPPaper(input: input)
        }
        // Images too small for two squeezes (the 8×8 digits) get the one-level preset.
        if arch != nil, input.height % 4 != 0 || input.width % 4 != 0 || min(input.height, input.width) < 16 { a.levels = 1 }
        if let channels { a.channels = channels }
        if let resBlocks { a.resBlocks = resBlocks }
        if let scales { a.levels = scales }
        if let checkerboardCouplings { a.checkerboardCouplings = checkerboardCouplings }
        if let channelCouplings { a.channelCouplings = channelCouplings }
        if let finalCouplings { a.finalCouplings = finalCouplings }
        if imageBatchNorm {
            a.batchNorm = true
            a.actNorm = imageActNorm ?? false
        } else if let imageActNorm {
            a.actNorm = imageActNorm
        }
        return a
    }
}
