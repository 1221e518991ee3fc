/// How the binary masks of successive couplings are chosen.
public enum MaskScheme: String, Codable, Hashable, Sendable, CaseIterable {
    /// "Alternating halves": coupling 0 transforms the first ⌈D/2⌉ features conditioned on the rest
    /// (mask b = 0 on features 0..<⌈D/2⌉, 1 on the others); every later coupling swaps the roles. For D = 2 this
    /// is keras.io's `[[0, 1], [1, 0], …]`.
    case alternating
    /// "Checkerboard": coupling 0 transforms the even features (b_j = j mod 2), or, with an image shape
    /// [H, W], the pixels with even (row + column); every later coupling swaps the roles. RealNVP paper,
    /// section 3.4.
    case checkerboard
}

/// The shape of a RealNVP model: everything needed to lay out its parameters. Stored as JSON in the
/// checkpoint's `__metadata__`.
///
/// Dinh, Sohl-Dickstein, Bengio, "Density estimation using Real NVP", ICLR 2017.
public struct FlowConfiguration: Codable, Hashable, Sendable {
    /// Number of features D (≥ 2).
    public var dim: Int
    /// Number of affine coupling layers K (≥ 1).
    public var couplings: Int
    /// Width of every hidden layer of the s and t networks (≥ 1).
    public var hidden: Int
    /// Number of hidden Dense+ReLU layers of each s and t network (≥ 1); each network has
    /// `hiddenLayers + 1` dense layers.
    public var hiddenLayers: Int
    /// The mask scheme (ignored when `customMasks` is set).
    public var maskScheme: MaskScheme
    /// Explicit masks `[K][D]` of 0/1 values (1 = conditioning part, passed through); overrides the scheme.
    public var customMasks: [[Int]]?
    /// Spatial shape `[H, W]` with H·W = D: the checkerboard mask then follows the parity of row + column.
    public var imageShape: [Int]?
    /// Adds the RealNVP paper's learnable per-feature scale on tanh: s = scale ⊙ tanh(S(b⊙x)), tensor
    /// `couplings.{i}.scale` `[D]`, initialised to 1.
    public var learnableScale: Bool
    /// The fixed data transform before the normaliser (dequantisation + logit for discrete data).
    public var preprocessing: Preprocessing
    /// An ``ActNorm`` (Glow's per-feature affine, tensors `actnorms.{k}.log_scale` and `.bias` `[D]`) after every
    /// coupling k.
    public var actNorm: Bool
    /// Context features K of a conditional flow p(x | c) (0: unconditional). Every coupling's s and t networks take
    /// the context c `[K]` (standardised by the model's context normaliser) beside the masked input: their first
    /// dense layer has D + K inputs. The base distribution stays N(0, I).
    public var contextFeatures: Int
    /// The number of classes when the context is a one-hot class label (then K = classes; `sample --class k` builds
    /// the one-hot row), nil for real-valued context columns.
    public var contextClasses: Int?
    /// The paper's multi-scale convolutional flow on images (``ImageFlowArchitecture``), nil for the MLP couplings.
    /// When set, D = C·H·W of its input and the MLP fields (`couplings`, `hidden`, `hiddenLayers`, masks,
    /// `learnableScale`, `actNorm`) are not used.
    public var image: ImageFlowArchitecture?

    /// A configuration; the defaults are the seed model (6 couplings, 4 × 256 ReLU, alternating masks).
    public init(
        dim: Int = 2, couplings: Int = 6, hidden: Int = 256, hiddenLayers: Int = 4,
        maskScheme: MaskScheme = .alternating, customMasks: [[Int]]? = nil,
        imageShape: [Int]? = nil, learnableScale: Bool = false, preprocessing: Preprocessing = .none,
        actNorm: Bool = false, contextFeatures: Int = 0, contextClasses: Int? = nil, image: ImageFlowArchitecture? = nil
    ) {
        self.image = image
        self.dim = dim
        self.couplings = couplings
        self.hidden = hidden
        self.hiddenLayers = hiddenLayers
        self.maskScheme = maskScheme
        self.customMasks = customMasks
        self.imageShape = imageShape
        self.learnableScale = learnableScale
        self.preprocessing = preprocessing
        self.actNorm = actNorm
        self.contextFeatures = contextFeatures
        self.contextClasses = contextClasses
    }

    /// Values per row of the flow's input: the D features, then the K context values.
    public var inputWidth: Int { dim + contextFeatures }
    /// Whether the flow models p(x | c).
    public var isConditional: Bool { contextFeatures > 0 }

    /// The image flow `architecture` with `preprocessing` (D = C·H·W of its input; `imageShape` [H, W] for one-channel
    /// images, as the plots read it).
    public static func imageFlow(_ architecture: ImageFlowArchitecture, preprocessing: Preprocessing) -> FlowConfiguration {
        let a = architecture
        return FlowConfiguration(dim: a.input.count, couplings: a.couplingCount, hidden: a.channels, hiddenLayers: max(1, a.resBlocks),
                                 imageShape: a.input.channels == 1 ? [a.input.height, a.input.width] : nil,
                                 preprocessing: preprocessing, image: a)
    }

    /// The seed model for `dim` features: 6 couplings, s and t with 4 hidden layers of 256 ReLU units.
    public static func seed(dim: Int = 2) -> FlowConfiguration { FlowConfiguration(dim: dim) }

    enum CodingKeys: String, CodingKey {
        case dim, couplings, hidden, hiddenLayers = "hidden_layers", maskScheme = "mask",
            customMasks = "masks", imageShape = "image_shape", learnableScale = "learnable_scale", preprocessing, actNorm = "act_norm",
            contextFeatures = "context_features", contextClasses = "context_classes", image = "image_flow"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        dim = try c.decode(Int.self, forKey: .dim)
        couplings = try c.decode(Int.self, forKey: .couplings)
        hidden = try c.decode(Int.self, forKey: .hidden)
        hiddenLayers = try c.decode(Int.self, forKey: .hiddenLayers)
        maskScheme = try c.decodeIfPresent(MaskScheme.self, forKey: .maskScheme) ?? .alternating
        customMasks = try c.decodeIfPresent([[Int]].self, forKey: .customMasks)
        imageShape = try c.decodeIfPresent([Int].self, forKey: .imageShape)
        learnableScale = try c.decodeIfPresent(Bool.self, forKey: .learnableScale) ?? false
        preprocessing = try c.decodeIfPresent(Preprocessing.self, forKey: .preprocessing) ?? .none
        actNorm = try c.decodeIfPresent(Bool.self, forKey: .actNorm) ?? false
        contextFeatures = try c.decodeIfPresent(Int.self, forKey: .contextFeatures) ?? 0
        contextClasses = try c.decodeIfPresent(Int.self, forKey: .contextClasses)
        image = try c.decodeIfPresent(ImageFlowArchitecture.self, forKey: .image)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(dim, forKey: .dim)
        try c.encode(couplings, forKey: .couplings)
        try c.encode(hidden, forKey: .hidden)
        try c.encode(hiddenLayers, forKey: .hiddenLayers)
        try c.encode(maskScheme, forKey: .maskScheme)
        try c.encodeIfPresent(customMasks, forKey: .customMasks)
        try c.encodeIfPresent(imageShape, forKey: .imageShape)
        try c.encode(learnableScale, forKey: .learnableScale)
        if preprocessing != .none { try c.encode(preprocessing, forKey: .preprocessing) }
        // Written only when on: a configuration without it keeps the bytes it had before the field existed.
        if actNorm { try c.encode(actNorm, forKey: .actNorm) }
        if contextFeatures != 0 { try c.encode(contextFeatures, forKey: .contextFeatures) }
        try c.encodeIfPresent(contextClasses, forKey: .contextClasses)
        try c.encodeIfPresent(image, forKey: .image)
    }

    /// Checks every field.
    /// - Throws: ``FlowConfigurationError`` naming the offending field and value.
    public func validate() throws {
        func fail(_ field: String, _ message: String) throws -> Never {
            throw FlowConfigurationError(field: field, message: message)
        }
        func fail(_ field: String, _ value: String, _ message: String) throws -> Never {
            throw FlowConfigurationError(field: field, value: value, message: message)
        }
        if dim < 2 {
            try fail("dim", "\(dim)", "a coupling layer needs at least 2 features (one to condition on, one to transform)")
        }
        try preprocessing.validate()
        if let image {
            try image.validate()
            if image.input.count != dim {
                try fail("image-shape", "\(image.input)", "holds \(image.input.count) values, but D = \(dim)")
            }
            if let shape = imageShape, shape != [image.input.height, image.input.width] {
                try fail("image-shape", shape.map(String.init).joined(separator: "x"), "does not match the image flow's input \(image.input)")
            }
            return
        }
        if couplings < 1 { try fail("couplings", "\(couplings)", "need at least 1 coupling layer") }
        if hidden < 1 { try fail("hidden", "\(hidden)", "need at least 1 hidden unit") }
        if hiddenLayers < 1 { try fail("hidden-layers", "\(hiddenLayers)", "need at least 1 hidden layer") }
        if contextFeatures < 0 || contextFeatures > 1 << 20 {
            try fail("context-columns", "\(contextFeatures)", "need 0 (unconditional) to 2²⁰ context values per row")
        }
        if let classes = contextClasses {
            if classes < 2 { try fail("condition", "\(classes) classes", "class conditioning needs at least 2 classes") }
            if classes != contextFeatures {
                try fail("condition", "\(classes) classes", "a one-hot class context has K = classes values per row, not \(contextFeatures)")
            }
        }
        // Parameter count before anything is laid out (ParameterLayout's Int arithmetic would trap on an absurd
        // configuration): 2 networks per coupling, each D→H, (L−1)×(H→H), H→D, with biases. In Double, which
        // cannot overflow here and is exact below 2⁵³. The flat buffers are exchanged with MPI's Int32 counts.
        let (d, h, l) = (Double(dim), Double(hidden), Double(hiddenLayers))
        let k = Double(contextFeatures)
        let total = 2 * Double(couplings) * (((d + k) * h + h) + (l - 1) * (h * h + h) + (h * d + d) + (actNorm ? d : 0))
        if total > Double(Int32.max) {
            try fail("hidden", "the model (D = \(dim), \(couplings) couplings, \(hiddenLayers)×\(hidden) hidden) would have "
                + (total < 0x1p63 ? "\(Int(total)) parameters" : "more parameters than an Int can count")
                + "; at most 2³¹ − 1 (MPI's element counts are 32-bit)")
        }
        if let shape = imageShape {
            // H×W with an overflow check: the shape may come from an untrusted checkpoint.
            if shape.count != 2 || shape[0] < 1 || shape[1] < 1
                || shape[0].multipliedReportingOverflow(by: shape[1]) != (dim, false) {
                try fail("image-shape", "\(shape.map(String.init).joined(separator: "x")) does not match D = \(dim) (need H×W = D)")
            }
        }
        if let masks = customMasks {
            if masks.count != couplings {
                try fail("masks", "\(masks.count) masks for \(couplings) couplings")
            }
            for (k, m) in masks.enumerated() {
                if m.count != dim { try fail("masks", "mask \(k) has \(m.count) entries, expected D = \(dim)") }
                if m.contains(where: { $0 != 0 && $0 != 1 }) { try fail("masks", "mask \(k) has values other than 0 and 1") }
            }
        }
    }

    /// Matrix-product FLOPs (2 per multiply-add) of one training sample, forward and backward: the forward
    /// multiply-adds of every dense layer of s and t, the weight gradients (as many), and the input gradients
    /// (as many, except the first layer of coupling 0, whose input is the data). Element-wise work and the
    /// optimiser (~10 FLOP per parameter per step) are not counted: the convention of the PyTorch reference
    /// (14,227,456 for the seed model). A conditional flow's first layers have D + K inputs.
    public var trainingFLOPsPerSample: Int {
        // Image flows: the ResNets' convolutions, forward, backward-data and backward-weights (3 × forward).
        if let image { return 2 * 3 * image.forwardMultiplyAddsPerImage }
        let macsPerNetwork = inputWidth * hidden + (hiddenLayers - 1) * hidden * hidden + hidden * dim
        let forward = 2 * couplings * macsPerNetwork
        let backward = 2 * forward - 2 * inputWidth * hidden
        return 2 * (forward + backward)
    }

    /// The 0/1 mask of every coupling, `[K][D]` (1 = conditioning part, passed through unchanged).
    public func masks() -> [[Int]] {
        if let m = customMasks { return m }
        return (0..<couplings).map { k in
            (0..<dim).map { j in
                let first: Int
                switch maskScheme {
                case .alternating:
                    first = j < (dim + 1) / 2 ? 0 : 1
                case .checkerboard:
                    if let s = imageShape, s.count == 2, s[1] > 0 {
                        first = (j / s[1] + j % s[1]) % 2
                    } else {
                        first = j % 2
                    }
                }
                return k % 2 == 0 ? first : 1 - first
            }
        }
    }
}

/// A configuration field out of range.
public struct FlowConfigurationError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The field (the command-line flag's name without dashes).
    public var field: String
    /// The offending value as given, if any.
    public var value: String?
    /// What is wrong.
    public var message: String
    /// An error for `field` (and its `value`).
    public init(field: String, value: String? = nil, message: String) {
        self.field = field
        self.value = value
        self.message = message
    }
    /// "invalid --batch-size 0: need at least 1 row per batch".
    public var description: String { "invalid --\(field)\(value.map { " \($0)" } ?? ""): \(message)" }
}
