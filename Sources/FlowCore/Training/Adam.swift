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

    /// Starts step t + 1: call once, then ``updateRange(parameters:gradient:lr:range:)`` on disjoint ranges
    /// (possibly from several threads).
    public func beginStep() { step += 1 }

    /// The update of step ``step`` on `range` (after ``beginStep()``).
    public func updateRange(parameters p: UnsafeMutablePointer<Scalar>, gradient g: UnsafePointer<Scalar>, lr: Double,
                            range: Range<Int>) {
        let c = configuration
        let t = Double(step)
        let bc1 = 1 - Double.pow(c.beta1, t)
        let bc2 = 1 - Double.pow(c.beta2, t)
        let stepSize = Scalar(lr / bc1)
        let invSqrtBc2 = Scalar(1 / bc2.squareRoot())
        let b1 = Scalar(c.beta1), b2 = Scalar(c.beta2), eps = Scalar(c.epsilon)
        let ob1 = 1 - b1, ob2 = 1 - b2
        let m = self.m.base, v = self.v.base
        for e in range {
            let ge = g[e]
            let me = b1 * m[e] + ob1 * ge
            let ve = b2 * v[e] + ob2 * ge * ge
            m[e] = me
            v[e] = ve
            p[e] -= stepSize * me / (ve.squareRoot() * invSqrtBc2 + eps)
        }
    }
}
