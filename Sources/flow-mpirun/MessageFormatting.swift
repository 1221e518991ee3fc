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

/// `text` as one word for a POSIX shell, for commands that messages print to be copied: as it is when it holds only
/// `A–Z a–z 0–9 _ @ % + = : , . / -`, otherwise in single quotes (`'runs/my run'`, a quote as `'\''`).
func shellQuoted(_ text: String) -> String {
    let safe = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@%+=:,./-")
    if !text.isEmpty, text.allSatisfy({ safe.contains($0) }) { return text }
    return "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
