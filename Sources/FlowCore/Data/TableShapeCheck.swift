extension TabularData {
    /// Checks the arguments common to ``CSVWriter`` and ``NPYWriter``: `rows >= 0`, `columns >= 1` and
    /// `count == rows * columns` without overflow.
    /// - Throws: ``FlowIOError`` naming `path` and the inconsistent numbers.
    static func checkShape(count: Int, rows: Int, columns: Int, path: String) throws(FlowIOError) {
        guard rows >= 0, columns >= 1 else {
            throw FlowIOError(path: path, message: "invalid table shape [\(rows), \(columns)]; need rows >= 0 and columns >= 1")
        }
        let (product, overflow) = rows.multipliedReportingOverflow(by: columns)
        guard !overflow, product == count else {
            throw FlowIOError(
                path: path,
                message: "values has \(count) elements but shape [\(rows), \(columns)] needs \(overflow ? "more than Int.max" : String(product))")
        }
    }
}
