import RealModule

/// Learning rate as a function of the optimiser step.
public enum LearningRateSchedule: Codable, Hashable, Sendable {
    /// lr(t) = base (the default).
    case constant
    /// Linear warm-up from 0 over `warmupSteps`, then cosine decay to `minimum`·base at `totalSteps`
    /// (Loshchilov & Hutter, "SGDR", ICLR 2017, without restarts).
    case cosine(warmupSteps: Int, totalSteps: Int, minimum: Double)

    /// The learning rate for update number `step` (0-based: the first update uses step 0) given `base`.
    public func rate(step: Int, base: Double) -> Double {
        switch self {
        case .constant:
            return base
        case let .cosine(warmup, total, minimum):
            if step < warmup { return base * Double(step + 1) / Double(warmup) }
            let span = max(1, total - warmup)
            let progress = min(1, Double(step - warmup) / Double(span))
            let cosine = 0.5 * (1 + Double.cos(Double.pi * progress))
            return base * (minimum + (1 - minimum) * cosine)
        }
    }
}
