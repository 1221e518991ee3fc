/// A dense table of numbers loaded from a CSV or NPY file: `rows` samples of `columns` features each.
public struct TabularData: Sendable, Equatable {
    /// Number of rows (samples). Readers return at least 1.
    public var rows: Int
    /// Number of columns (features per sample). Readers return at least 1 (a single column is allowed here;
    /// the model layer rejects dimension 1 itself).
    public var columns: Int
    /// The values, shape `[rows, columns]`, row-major: element `(r, c)` is `values[r * columns + c]`.
    /// Readers guarantee `values.count == rows * columns` and that every value is finite and within Float32's
    /// range (see ``isInFloat32Range(_:)``).
    public var values: [Double]
    /// The column names from a CSV header line (`columns` entries), or `nil` when the file had no header
    /// (always `nil` for NPY files).
    public var header: [String]?

    /// Creates a table; `values` is `[rows, columns]` row-major and should hold `rows * columns` elements
    /// (not checked here).
    public init(rows: Int, columns: Int, values: [Double], header: [String]? = nil) {
        self.rows = rows
        self.columns = columns
        self.values = values
        self.header = header
    }
}

extension TabularData {
    /// Whether a Float32 model can use `value`: it rounds to a finite `Float` (|value| < 2¹²⁸ − 2¹⁰³ ≈
    /// 3.4028235677973366e38, so `Float.greatestFiniteMagnitude` written as `3.4028235e+38` loads).
    public static func isInFloat32Range(_ value: Double) -> Bool { Float(value).isFinite }

    /// Why `value` cannot be used by a Float32 model (`"value 1e+39 is outside the Float32 range (±3.4e38)"`),
    /// or nil when ``isInFloat32Range(_:)``.
    public static func float32RangeProblem(_ value: Double) -> String? {
        if value.isNaN { return "value is NaN; remove or impute it" }
        if value.isInfinite { return "value is \(value > 0 ? "+" : "-")Inf; remove or impute it" }
        guard !isInFloat32Range(value) else { return nil }
        return "value \(value) is outside the Float32 range (±3.4e38)"
    }
}
