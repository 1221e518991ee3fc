/// `1 epoch`, `3 epochs`: a count with its noun, for messages.
/// - Parameters:
///   - count: the number.
///   - noun: the singular noun; the plural adds "s" unless `plural` is given.
func counted(_ count: Int, _ noun: String, plural: String? = nil) -> String {
    "\(count) \(count == 1 ? noun : plural ?? noun + "s")"
}
