/// Axis limits chosen from data.
public enum PlotLimits {
    /// Robust limits of the finite entries of `values`: the `lowerQuantile` … `upperQuantile` quantiles
    /// (linear interpolation between order statistics; defaults 0.5 % and 99.5 %), widened on each side by
    /// `margin` × their span. Outliers beyond the quantiles are therefore left out of view.
    /// No finite value gives `−1…1`; a zero span is widened as in ``NiceTicks/sanitized(_:)``.
    public static func robust(
        _ values: [Double], lowerQuantile: Double = 0.005, upperQuantile: Double = 0.995, margin: Double = 0.05
    ) -> ClosedRange<Double> {
        let sorted = values.filter(\.isFinite).sorted()
        guard !sorted.isEmpty else { return -1...1 }
        let low = quantile(sorted, min(max(lowerQuantile, 0), 1))
        let high = quantile(sorted, min(max(upperQuantile, 0), 1))
        return widened(min(low, high), max(low, high), margin: margin)
    }

    /// Limits spanning the minimum … maximum of the finite entries of `values`, widened on each side by
    /// `margin` × the span. No finite value gives `−1…1`; a zero span is widened as in ``NiceTicks/sanitized(_:)``.
    public static func padded(_ values: [Double], margin: Double = 0.05) -> ClosedRange<Double> {
        var low = Double.infinity, high = -Double.infinity
        for value in values where value.isFinite {
            low = min(low, value)
            high = max(high, value)
        }
        guard low <= high else { return -1...1 }
        return widened(low, high, margin: margin)
    }

    /// The `q`-quantile (0…1) of an ascending, non-empty array, interpolating linearly between order statistics.
    static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        let position = q * Double(sorted.count - 1)
        let lower = Int(position.rounded(.down))
        let upper = min(lower + 1, sorted.count - 1)
        let weight = position - Double(lower)
        let gap = sorted[upper] - sorted[lower]
        // Neighbours near ±Double.greatestFiniteMagnitude: their gap overflows, so weight them instead.
        return gap.isFinite ? sorted[lower] + gap * weight : sorted[lower] * (1 - weight) + sorted[upper] * weight
    }

    private static func widened(_ low: Double, _ high: Double, margin: Double) -> ClosedRange<Double> {
        let (saneLow, saneHigh) = NiceTicks.sanitized(low...high)
        let pad = (saneHigh - saneLow) * max(margin, 0)
        return (saneLow - pad)...(saneHigh + pad)
    }
}
