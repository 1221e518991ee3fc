import RealModule

/// An exponential moving average of the parameters (Polyak & Juditsky, SIAM J. Control Optim. 30(4), 1992;
/// Keras's optimizer option `use_ema=True, ema_momentum=μ`; PyTorch's `torch.optim.swa_utils` EMA):
///
///     θ̄ ← μʲ·θ̄ + (1 − μʲ)·θ        (j = steps since the last update; the first update copies θ)
///
/// Updating every ``interval`` steps with μʲ instead of every step with μ keeps the time constant at
/// 1/(1 − μ) steps (0.99: the last ~100 steps) for a tenth of the memory traffic. With a constant learning
/// rate the trained parameters θ wander around a minimum; their average θ̄ sits closer to it, which is what
/// the evaluated, sampled and saved model uses. It does not feed back into training.
///
/// Buffers: ``average`` `[storageCount]` (the flat parameter layout), owned here and allocated once.
public final class ParameterAverage: @unchecked Sendable {
    /// Steps between regular updates (and always at an epoch's end).
    public static let interval = 10
    /// μ, in (0, 1).
    public let momentum: Double
    /// θ̄ `[storageCount]`.
    public let average: AlignedBuffer<Float>
    /// The trainer step count at the last update (0: never updated; the next update copies θ).
    public var lastStep: Int

    /// An average of `count` parameters that starts as a copy of `initial` `[count]`.
    public init(momentum: Double, initial: UnsafePointer<Float>, count: Int) {
        precondition(momentum > 0 && momentum < 1, "ParameterAverage: momentum \(momentum) outside (0, 1)")
        self.momentum = momentum
        average = AlignedBuffer(count: count)
        average.base.update(from: initial, count: count)
        lastStep = 0
    }

    /// The weight μʲ kept of the old average when updating at trainer step `step` (0 for the first update).
    public func retained(atStep step: Int) -> Float {
        lastStep == 0 ? 0 : Float(Double.pow(momentum, Double(step - lastStep)))
    }

    /// θ̄[range] ← r·θ̄[range] + (1 − r)·θ[range] with r = ``retained(atStep:)``; disjoint ranges may run on
    /// several threads. Call ``finishUpdate(atStep:)`` once after every range is done.
    /// - Parameter parameters: θ `[storageCount]`.
    public func update(parameters: UnsafePointer<Float>, range: Range<Int>, retained r: Float) {
        let a = average.base
        let q = 1 - r
        for e in range { a[e] = r * a[e] + q * parameters[e] }
    }

    /// Records that the average now includes the parameters of trainer step `step`.
    public func finishUpdate(atStep step: Int) { lastStep = step }

    /// Whether the trainer updates the average after step `step` (1-based count of steps done).
    public static func isDue(step: Int, batchesPerEpoch: Int) -> Bool {
        step % interval == 0 || step % batchesPerEpoch == 0
    }
}
