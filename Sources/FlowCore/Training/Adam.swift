import RealModule

/// Hyper-parameters of Adam.
public struct AdamConfiguration: Codable, Hashable, Sendable {
    /// Exponential decay of the first moment (β₁).
    public var beta1: Double
    /// Exponential decay of the second moment (β₂).
    public var beta2: Double
    /// ε added to √v̂.
    public var epsilon: Double

    /// PyTorch's and Keras's defaults: β = (0.9, 0.999), ε = 1e-8 (Keras uses 1e-7).
    public init(beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
    }
}

/// Adam (Kingma & Ba, ICLR 2015, Algorithm 1) in PyTorch's formulation, on flat buffers:
///
///     m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²
///     p ← p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
///
/// The moments `m` and `v` have the flat parameter layout; `step` counts completed updates (t after the
/// update). Bias corrections are computed in Double.
public final class AdamState<Scalar: FlowScalar>: @unchecked Sendable {
    /// First moments `[storageCount]`.
    public let m: AlignedBuffer<Scalar>
    /// Second moments `[storageCount]`.
    public let v: AlignedBuffer<Scalar>
    /// Updates applied so far.
    public var step: Int
    /// Hyper-parameters.
    public let configuration: AdamConfiguration

    /// Zero moments for `count` parameters.
    public init(count: Int, configuration: AdamConfiguration = AdamConfiguration()) {
        m = AlignedBuffer(count: count)
        v = AlignedBuffer(count: count)
        step = 0
        self.configuration = configuration
    }

    /// Applies one update with learning rate `lr` to `parameters` `[count]` using `gradient` `[count]`.
    public func update(parameters p: UnsafeMutablePointer<Scalar>, gradient g: UnsafePointer<Scalar>, lr: Double) {
        beginStep()
        updateRange(parameters: p, gradient: g, lr: lr, range: 0..<m.count)
    }

    /// Starts step t + 1: call once, then ``updateRange(parameters:gradient:lr:range:gradientScale:l2:)`` on
    /// disjoint ranges (possibly from several threads).
    public func beginStep() { step += 1 }

    /// The update of step ``step`` on `range` (after ``beginStep()``), with the gradient taken as
    /// (g + g2)·`gradientScale` + 2·`l2`·p (g2 optional: a second worker's buffer, summed on the fly): the division by the batch size, clipping and the L2 penalty's gradient
    /// fold into the one pass over the parameters.
    public func updateRange(parameters p: UnsafeMutablePointer<Scalar>, gradient g: UnsafePointer<Scalar>,
                            secondGradient g2: UnsafePointer<Scalar>? = nil, lr: Double,
                            range: Range<Int>, gradientScale: Double = 1, l2: Double = 0) {
        let c = configuration
        let t = Double(step)
        let bc1 = 1 - Double.pow(c.beta1, t)
        let bc2 = 1 - Double.pow(c.beta2, t)
        let at = range.lowerBound
        Scalar.adamUpdate(
            parameters: p + at, gradient: g + at, secondGradient: g2.map { $0 + at }, firstMoment: m.base + at, secondMoment: v.base + at, count: range.count,
            beta1: Scalar(c.beta1), beta2: Scalar(c.beta2), stepSize: Scalar(lr / bc1),
            inverseSqrtBiasCorrection2: Scalar(1 / bc2.squareRoot()), epsilon: Scalar(c.epsilon),
            gradientScale: Scalar(gradientScale), l2: Scalar(l2))
    }
}
