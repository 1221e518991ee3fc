/// The multi-scale convolutional RealNVP of the paper (Dinh, Sohl-Dickstein & Bengio, ICLR 2017, §3.3–3.6) on images
/// `[C, H, W]`: each level has checkerboard couplings, a squeeze, channel-wise couplings, and a factor-out of half
/// the channels; a final stage of checkerboard couplings acts on what remains.
///
///     level ℓ on [c, h, w]:  K_cb checkerboard couplings → squeeze → [4c, h/2, w/2] → K_ch channel-wise couplings
///                            → factor out 2c channels (to the latent) → [2c, h/2, w/2]
///     final on [c, h, w]:    K_final checkerboard couplings
///
/// Every coupling's s and t come from one ResNet (``ConvResNet``, `channels` wide, `resBlocks` blocks) and is
/// followed by an ``ImageActNorm`` when `actNorm`, or by an ``ImageBatchNorm`` when `batchNorm` (the paper's §3.7). Factor-out keeps the first channels active (a prefix of the
/// channel-major row) and passes the rest through every later transform, so the latent z is the row itself and its
/// density the standard normal over all C·H·W values (paper §3.6, eq. 16 with a unit Gaussian prior on every scale).
///
/// Arguments: `input` `[C, H, W]` (H and W divisible by 2^levels); `levels`; couplings per stage; `channels` C′;
/// `resBlocks` B; `actNorm`; `batchNorm` (at most one of the two).
///
/// Example: `ImageFlowArchitecture.realNVPSmall(input: ImageShape(channels: 1, height: 28, width: 28))`, about
/// 630k parameters.
public struct ImageFlowArchitecture: Codable, Hashable, Sendable {
    /// The input image shape `[C, H, W]`.
    public var input: ImageShape
    /// Levels (squeezes) before the final stage.
    public var levels: Int
    /// Checkerboard couplings per level.
    public var checkerboardCouplings: Int
    /// Channel-wise couplings per level (after the squeeze).
    public var channelCouplings: Int
    /// Checkerboard couplings of the final stage.
    public var finalCouplings: Int
    /// Width C′ of every s/t ResNet (feature maps).
    public var channels: Int
    /// Residual blocks B of every s/t ResNet.
    public var resBlocks: Int
    /// An ``ImageActNorm`` after every coupling.
    public var actNorm: Bool
    /// An ``ImageBatchNorm`` after every coupling (instead of ActNorm; statistics of the global batch in training,
    /// running averages in evaluation).
    public var batchNorm: Bool

    /// An architecture; the defaults are `realnvp-small`'s.
    public init(input: ImageShape, levels: Int = 2, checkerboardCouplings: Int = 3, channelCouplings: Int = 3,
                finalCouplings: Int = 4, channels: Int = 32, resBlocks: Int = 2, actNorm: Bool = true, batchNorm: Bool = false) {
        self.input = input
        self.levels = levels
        self.checkerboardCouplings = checkerboardCouplings
        self.channelCouplings = channelCouplings
        self.finalCouplings = finalCouplings
        self.channels = channels
        self.resBlocks = resBlocks
        self.actNorm = actNorm
        self.batchNorm = batchNorm
    }

    /// `realnvp-small`: 2 levels of 3 + 3 couplings, 4 final, ResNets of 32 channels × 2 blocks, ActNorm (about
    /// 630k parameters on 1×28×28).
    public static func realNVPSmall(input: ImageShape) -> ImageFlowArchitecture { ImageFlowArchitecture(input: input) }
    /// `realnvp-paper`: as `realnvp-small` with ResNets of 64 channels × 8 blocks (the paper's s/t width and depth).
    public static func realNVPPaper(input: ImageShape) -> ImageFlowArchitecture {
        ImageFlowArchitecture(input: input, channels: 64, resBlocks: 8)
    }
    /// The one-level preset for small images (the bundled 8×8 digits): 3 + 3 couplings, 4 final, 32 × 2.
    public static func oneLevel(input: ImageShape) -> ImageFlowArchitecture { ImageFlowArchitecture(input: input, levels: 1) }

    enum CodingKeys: String, CodingKey {
        case input, levels, checkerboardCouplings = "checkerboard_couplings", channelCouplings = "channel_couplings",
            finalCouplings = "final_couplings", channels, resBlocks = "res_blocks", actNorm = "act_norm", batchNorm = "batch_norm"
    }

    /// Decodes a stored architecture (files written before batch normalisation existed have no `batch_norm`: false).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        input = try c.decode(ImageShape.self, forKey: .input)
        levels = try c.decode(Int.self, forKey: .levels)
        checkerboardCouplings = try c.decode(Int.self, forKey: .checkerboardCouplings)
        channelCouplings = try c.decode(Int.self, forKey: .channelCouplings)
        finalCouplings = try c.decode(Int.self, forKey: .finalCouplings)
        channels = try c.decode(Int.self, forKey: .channels)
        resBlocks = try c.decode(Int.self, forKey: .resBlocks)
        actNorm = try c.decode(Bool.self, forKey: .actNorm)
        batchNorm = try c.decodeIfPresent(Bool.self, forKey: .batchNorm) ?? false
    }

    /// Encodes every field (`batch_norm` only when set, so that ActNorm models' metadata is unchanged).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(input, forKey: .input)
        try c.encode(levels, forKey: .levels)
        try c.encode(checkerboardCouplings, forKey: .checkerboardCouplings)
        try c.encode(channelCouplings, forKey: .channelCouplings)
        try c.encode(finalCouplings, forKey: .finalCouplings)
        try c.encode(channels, forKey: .channels)
        try c.encode(resBlocks, forKey: .resBlocks)
        try c.encode(actNorm, forKey: .actNorm)
        if batchNorm { try c.encode(batchNorm, forKey: .batchNorm) }
    }

    /// One transform of the chain, as built.
    public enum Step: Hashable, Sendable {
        /// A coupling with its checkpoint name, the active shape and mask.
        case coupling(name: String, shape: ImageShape, mask: ImageMask)
        /// An ActNorm after a coupling.
        case actNorm(name: String, shape: ImageShape)
        /// A batch normalisation after a coupling.
        case batchNorm(name: String, shape: ImageShape)
        /// A squeeze of the active shape.
        case squeeze(name: String, shape: ImageShape)
        /// The end of a level: `shape`'s last `factoredChannels` channels go to the latent.
        case factorOut(level: Int, shape: ImageShape, factoredChannels: Int)
    }

    /// The chain, level by level (factor-outs included as markers: they have no transform of their own).
    public var steps: [Step] {
        var out: [Step] = []
        var shape = input
        func stage(_ prefix: String, _ count: Int, checkerboard: Bool) {
            for k in 0..<count {
                let name = "\(prefix).\(k)"
                out.append(.coupling(name: name, shape: shape, mask: .alternating(checkerboard: checkerboard, index: k)))
                if actNorm { out.append(.actNorm(name: "\(prefix).\(k).actnorm", shape: shape)) }
                if batchNorm { out.append(.batchNorm(name: "\(prefix).\(k).batchnorm", shape: shape)) }
            }
        }
        for level in 0..<levels {
            stage("levels.\(level).checkerboard", checkerboardCouplings, checkerboard: true)
            out.append(.squeeze(name: "levels.\(level).squeeze", shape: shape))
            shape = shape.squeezed
            stage("levels.\(level).channel", channelCouplings, checkerboard: false)
            out.append(.factorOut(level: level, shape: shape, factoredChannels: shape.channels / 2))
            shape = shape.keeping(channels: shape.channels / 2)
        }
        stage("final.checkerboard", finalCouplings, checkerboard: true)
        return out
    }

    /// Couplings in the chain.
    public var couplingCount: Int { levels * (checkerboardCouplings + channelCouplings) + finalCouplings }

    /// Checks every field.
    /// - Throws: ``FlowConfigurationError`` naming the flag.
    public func validate() throws {
        func fail(_ field: String, _ value: Int, _ message: String) throws -> Never {
            throw FlowConfigurationError(field: field, value: "\(value)", message: message)
        }
        if input.channels < 1 || input.height < 1 || input.width < 1 || input.channels > 1 << 12 || input.height > 1 << 14 || input.width > 1 << 14 {
            throw FlowConfigurationError(field: "image-shape", value: "\(input)", message: "need 1 … 4096 channels and 1 … 16384 pixels a side")
        }
        if levels < 0 || levels > 8 { try fail("scales", levels, "need 0 … 8 levels (scales)") }
        let divisor = 1 << levels
        if input.height % divisor != 0 || input.width % divisor != 0 {
            throw FlowConfigurationError(field: "scales", value: "\(levels)",
                message: "\(levels) squeeze\(levels == 1 ? "" : "s") need a height and width divisible by \(divisor); the images are \(input)")
        }
        if checkerboardCouplings < 0 || checkerboardCouplings > 64 { try fail("checkerboard-couplings", checkerboardCouplings, "need 0 … 64") }
        if channelCouplings < 0 || channelCouplings > 64 { try fail("channel-couplings", channelCouplings, "need 0 … 64") }
        if finalCouplings < 0 || finalCouplings > 64 { try fail("final-couplings", finalCouplings, "need 0 … 64") }
        if couplingCount < 1 { try fail("final-couplings", finalCouplings, "the flow needs at least one coupling") }
        if channels < 1 || channels > 1024 { try fail("channels", channels, "need 1 … 1024 feature maps") }
        if resBlocks < 0 || resBlocks > 64 { try fail("res-blocks", resBlocks, "need 0 … 64 residual blocks") }
        if actNorm && batchNorm {
            throw FlowConfigurationError(field: "image-batch-norm", message: "ActNorm and batch normalisation are alternatives: --image-batch-norm replaces ActNorm (drop --image-act-norm)")
        }
        // A checkerboard coupling on 1×1 images transforms nothing (or conditions on nothing).
        for case let .coupling(name, shape, .checkerboard) in steps where shape.pixels < 2 {
            throw FlowConfigurationError(field: "scales", value: "\(levels)",
                message: "\(name) would be a checkerboard coupling on \(shape) images (one pixel): use fewer scales or no checkerboard couplings there")
        }
        let total = Double(parameterCount)
        if total > Double(Int32.max) {
            try fail("channels", channels, "the model would have \(Int(total)) parameters; at most 2³¹ − 1 (MPI's element counts are 32-bit)")
        }
    }

    /// Trainable parameters (each coupling's ResNet and scale, each ActNorm's or batch norm's 2 per channel; batch norm's
    /// running averages are saved state, not counted).
    public var parameterCount: Int {
        var total = 0
        for step in steps {
            switch step {
            case let .coupling(_, shape, mask):
                let (ci, co): (Int, Int)
                if case .checkerboard = mask { (ci, co) = (shape.channels, shape.channels) } else { (ci, co) = (shape.channels / 2, shape.channels / 2) }
                let C = channels
                total += (ci * C * 9 + C) + resBlocks * 2 * (C * C * 9 + C) + (C * 2 * co * 9 + 2 * co) + co
            case let .actNorm(_, shape), let .batchNorm(_, shape): total += 2 * shape.channels
            case .squeeze, .factorOut: break
            }
        }
        return total
    }

    /// Convolution multiply-adds of one image's forward pass (the s/t ResNets; element-wise work not counted).
    public var forwardMultiplyAddsPerImage: Int {
        var total = 0
        for case let .coupling(_, shape, mask) in steps {
            let ci = { if case .checkerboard = mask { return shape.channels } else { return shape.channels / 2 } }()
            let C = channels
            total += 9 * shape.pixels * (ci * C + 2 * resBlocks * C * C + C * 2 * ci)
        }
        return total
    }

    /// Appends the chain's transforms (after the data normaliser) to `chain`, on rows of `features` = C·H·W values.
    func appendTransforms<Scalar: FlowScalar>(to chain: inout ChainBuilder<Scalar>, features D: Int, context: CouplingContext?) {
        for step in steps {
            switch step {
            case let .coupling(name, shape, mask):
                chain.append { p, w in
                    ImageAffineCoupling<Scalar>(name: name, shape: shape, mask: mask, features: D, channels: channels,
                                                blocks: resBlocks, context: context, parameters: &p, workspace: &w)
                }
            case let .actNorm(name, shape):
                chain.append { p, w in ImageActNorm<Scalar>(name: name, shape: shape, features: D, parameters: &p, workspace: &w) }
            case let .batchNorm(name, shape):
                chain.append { p, w in ImageBatchNorm<Scalar>(name: name, shape: shape, features: D, parameters: &p, workspace: &w) }
            case let .squeeze(name, shape):
                chain.append { _, w in Squeeze<Scalar>(name: name, shape: shape, features: D, workspace: &w) }
            case .factorOut:
                break
            }
        }
    }
}
