/// How a parameter tensor is initialised.
public enum TensorInitializer: Hashable, Sendable {
    /// Glorot (Xavier) uniform U(−a, a), a = √(6/(fan_in + fan_out)) for a weight `[out, in]`, or `[out, in, kh, kw]`
    /// with fan_in = in·kh·kw and fan_out = out·kh·kw (Keras's default kernel initialiser; Glorot & Bengio,
    /// AISTATS 2010).
    case glorotUniform
    /// All zeros (biases; the identity start of ActNorm's bias and log-scale).
    case zeros
    /// Uniform U(−bound, bound): PyTorch's default for `Conv2d` weights and biases, bound = 1/√fan_in (its
    /// `kaiming_uniform_(a = √5)`), used by the convolutions of the image flows' s/t ResNets.
    case uniform(bound: Double)
    /// All ones (the learnable tanh scale of a coupling).
    case ones
}

/// Where one named tensor lives in the flat parameter buffer.
public struct TensorSlot: Hashable, Sendable {
    /// Checkpoint name, e.g. `couplings.0.s.1.weight`.
    public var name: String
    /// Shape: `[out, in]` for a weight, `[out]` for a bias, `[D]` for a per-feature vector.
    public var shape: [Int]
    /// First element in the flat buffer.
    public var offset: Int
    /// Number of elements (product of `shape`).
    public var count: Int
    /// Whether the L2 penalty applies (dense weight matrices only; Keras kernel_regularizer semantics).
    public var isWeightMatrix: Bool
    /// The initial values.
    public var initializer: TensorInitializer
    /// The transform that declared it (its index in the flow's chain).
    public var transform: Int
    /// False for state that is saved with the parameters but not trained (batch norm's running averages: PyTorch's
    /// "buffers"): its gradient is always zero, so Adam leaves it as it is, and it is not counted in
    /// ``ParameterLayout/parameterCount``.
    public var isTrainable: Bool = true
}

/// One dense layer y = x·Wᵀ + b inside the flat parameter buffer.
public struct DenseSlot: Hashable, Sendable {
    /// Input features.
    public var inputs: Int
    /// Output features.
    public var outputs: Int
    /// Offset of `weight` `[outputs, inputs]`.
    public var weight: Int
    /// Offset of `bias` `[outputs]`.
    public var bias: Int
}

/// One 3×3 convolution (``Convolution3x3``) inside the flat parameter buffer.
public struct ConvSlot: Hashable, Sendable {
    /// Input channels Ci.
    public var inputs: Int
    /// Output channels Co.
    public var outputs: Int
    /// Offset of `weight` `[Co, Ci, 3, 3]`.
    public var weight: Int
    /// Offset of `bias` `[Co]`.
    public var bias: Int
}

/// The layout of every trainable parameter of a flow in one flat buffer, transform by transform in chain order,
/// each tensor in the order its transform declared it (see ``Builder``). A transform's parameters, and
/// gradients, form one contiguous range: a natural allreduce bucket. Each tensor starts at a multiple of 16
/// elements (64 bytes for Float); the padding stays zero.
public struct ParameterLayout: Hashable, Sendable {
    /// Every tensor, in storage order.
    public let tensors: [TensorSlot]
    /// The flat-buffer range of every transform that has parameters, in chain order (the gradient buckets).
    public let buckets: [Range<Int>]
    /// The bucket of each transform of the chain, nil for a transform without parameters.
    public let bucketOfTransform: [Int?]
    /// Elements in the flat buffer, padding included.
    public let storageCount: Int
    /// Number of trainable parameters (padding and untrained state such as running averages excluded).
    public let parameterCount: Int

    /// Collects the tensors of a chain while its transforms are built: each transform calls
    /// ``beginTransform()``, declares its tensors with ``tensor(_:shape:initializer:isWeightMatrix:)`` (which
    /// returns the offset it will read them at), and the flow calls ``layout()`` at the end.
    public struct Builder: Sendable {
        var tensors: [TensorSlot] = []
        var ranges: [Range<Int>?] = []
        var offset = 0
        var params = 0

        /// An empty layout.
        public init() {}

        /// Starts the next transform of the chain (its tensors form one bucket).
        public mutating func beginTransform() { ranges.append(nil) }

        /// Declares tensor `name` of `shape` for the current transform and returns its offset. `trainable` false
        /// declares saved state that is not trained (``TensorSlot/isTrainable``).
        public mutating func tensor(_ name: String, shape: [Int], initializer: TensorInitializer,
                                    isWeightMatrix: Bool = false, trainable: Bool = true) -> Int {
            precondition(!ranges.isEmpty, "declare tensors after beginTransform()")
            let count = shape.reduce(1, *)
            let at = offset
            tensors.append(TensorSlot(name: name, shape: shape, offset: at, count: count, isWeightMatrix: isWeightMatrix,
                                      initializer: initializer, transform: ranges.count - 1, isTrainable: trainable))
            offset += (count + 15) / 16 * 16
            if trainable { params += count }
            ranges[ranges.count - 1] = (ranges[ranges.count - 1]?.lowerBound ?? at)..<offset
            return at
        }

        /// A dense layer `name.weight` `[outputs, inputs]` (Glorot uniform, L2) and `name.bias` `[outputs]` (zeros).
        public mutating func dense(_ name: String, inputs: Int, outputs: Int) -> DenseSlot {
            let w = tensor("\(name).weight", shape: [outputs, inputs], initializer: .glorotUniform, isWeightMatrix: true)
            let b = tensor("\(name).bias", shape: [outputs], initializer: .zeros)
            return DenseSlot(inputs: inputs, outputs: outputs, weight: w, bias: b)
        }

        /// A 3×3 convolution `name.weight` `[outputs, inputs, 3, 3]` and `name.bias` `[outputs]`: PyTorch's `Conv2d`
        /// default, both U(±1/√(9·inputs)), or both zero when `zeroInitialized` (the last layer of a coupling's s/t
        /// network, so that a fresh coupling is the identity).
        public mutating func conv3x3(_ name: String, inputs: Int, outputs: Int, zeroInitialized: Bool = false) -> ConvSlot {
            let bound = 1 / Double(9 * inputs).squareRoot()
            let w = tensor("\(name).weight", shape: [outputs, inputs, 3, 3], initializer: zeroInitialized ? .zeros : .uniform(bound: bound),
                           isWeightMatrix: true)
            let b = tensor("\(name).bias", shape: [outputs], initializer: zeroInitialized ? .zeros : .uniform(bound: bound))
            return ConvSlot(inputs: inputs, outputs: outputs, weight: w, bias: b)
        }

        /// The finished layout.
        public func layout() -> ParameterLayout {
            var buckets: [Range<Int>] = []
            var of: [Int?] = []
            for r in ranges {
                if let r { of.append(buckets.count); buckets.append(r) } else { of.append(nil) }
            }
            return ParameterLayout(tensors: tensors, buckets: buckets, bucketOfTransform: of, storageCount: offset,
                                   parameterCount: params)
        }
    }

    /// The slot named `name`, or nil.
    public func slot(named name: String) -> TensorSlot? { tensors.first { $0.name == name } }
}
