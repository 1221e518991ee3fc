/// A dense table of numbers loaded from a CSV or NPY file: `rows` samples of `columns` features each.
public struct TabularData: Sendable, Equatable {
    /// Number of rows (samples). Readers return at least 1.
    public var rows: Int
    /// Number of columns (features per sample). Readers return at least 1 (a single column is allowed here;
    /// the model layer rejects dimension 1 itself).
    public var columns: Int
    /// The values, shape `[rows, columns]`, row-major: element `(r, c)` is `values[r * columns + c]`.
    /// Readers guarantee `values.count == rows * columns` and that every value is finite.
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
