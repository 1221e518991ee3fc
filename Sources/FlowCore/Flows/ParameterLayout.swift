/// Where one named tensor lives in the flat parameter buffer.
public struct TensorSlot: Hashable, Sendable {
    /// Checkpoint name, e.g. `couplings.0.s.1.weight`.
    public var name: String
    /// Shape: `[out, in]` for a weight, `[out]` for a bias, `[D]` for a scale.
    public var shape: [Int]
    /// First element in the flat buffer.
    public var offset: Int
    /// Number of elements (product of `shape`).
    public var count: Int
    /// Whether the L2 penalty applies (dense weight matrices only; Keras kernel_regularizer semantics).
    public var isWeightMatrix: Bool
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

/// The layout of every parameter of a RealNVP in one flat buffer: coupling by coupling (so that a
/// coupling's parameters, and gradients, form one contiguous range, a natural allreduce bucket), within a
/// coupling s.0 … s.L, t.0 … t.L (weight then bias), then the optional scale. Each tensor starts at a
/// multiple of 16 elements (64 bytes for Float); the padding stays zero.
public struct ParameterLayout: Hashable, Sendable {
    /// Every tensor, in storage order.
    public let tensors: [TensorSlot]
    /// Dense layers `[coupling][0 = s, 1 = t][layer]`.
    public let dense: [[[DenseSlot]]]
    /// Offset of `couplings.{k}.scale` `[D]`, when the configuration has a learnable scale.
    public let scale: [Int]?
    /// The flat-buffer range of coupling k (a gradient bucket).
    public let couplingRanges: [Range<Int>]
    /// Elements in the flat buffer, padding included.
    public let storageCount: Int
    /// Number of trainable parameters (padding excluded).
    public let parameterCount: Int

    /// Lays out the parameters of `configuration`.
    public init(_ configuration: FlowConfiguration) {
        let D = configuration.dim, H = configuration.hidden, L = configuration.hiddenLayers
        var tensors: [TensorSlot] = []
        var dense: [[[DenseSlot]]] = []
        var scale: [Int] = []
        var ranges: [Range<Int>] = []
        var offset = 0
        var params = 0
        func place(_ name: String, _ shape: [Int], weight: Bool) -> Int {
            let count = shape.reduce(1, *)
            let at = offset
            tensors.append(TensorSlot(name: name, shape: shape, offset: at, count: count, isWeightMatrix: weight))
            offset += (count + 15) / 16 * 16
            params += count
            return at
        }
        for k in 0..<configuration.couplings {
            let start = offset
            var nets: [[DenseSlot]] = []
            for net in ["s", "t"] {
                var layers: [DenseSlot] = []
                for j in 0...L {
                    let inputs = j == 0 ? D : H
                    let outputs = j == L ? D : H
                    let w = place("couplings.\(k).\(net).\(j).weight", [outputs, inputs], weight: true)
                    let b = place("couplings.\(k).\(net).\(j).bias", [outputs], weight: false)
                    layers.append(DenseSlot(inputs: inputs, outputs: outputs, weight: w, bias: b))
                }
                nets.append(layers)
            }
            if configuration.learnableScale {
                scale.append(place("couplings.\(k).scale", [D], weight: false))
            }
            dense.append(nets)
            ranges.append(start..<offset)
        }
        self.tensors = tensors
        self.dense = dense
        self.scale = configuration.learnableScale ? scale : nil
        self.couplingRanges = ranges
        self.storageCount = offset
        self.parameterCount = params
    }

    /// The slot named `name`, or nil.
    public func slot(named name: String) -> TensorSlot? { tensors.first { $0.name == name } }
}
