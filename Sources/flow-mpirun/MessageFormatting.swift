/// `1 epoch`, `3 epochs`: a count with its noun, for messages.
/// - Parameters:
///   - count: the number.
///   - noun: the singular noun; the plural adds "s" unless `plural` is given.
func counted(_ count: Int, _ noun: String, plural: String? = nil) -> String {
    "\(count) \(count == 1 ? noun : plural ?? noun + "s")"
}

/// A loss for messages: 4 decimals (`2116.6800`), or 6 significant digits beyond a million (`1.23457e+75`, not
/// 76 digits of a diverged run's NLL); `nan` and `inf` as they are.
func formatLoss(_ value: Double) -> String {
    String(format: abs(value) < 1e6 || !value.isFinite ? "%.4f" : "%.6g", value)
}
