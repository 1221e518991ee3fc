/// A set of 2-D points stored as two parallel coordinate arrays: point `i` is `(xs[i], ys[i])`.
///
/// This is the one point representation used by every plot in the module. Build it from a flat row-major
/// `[n, 2]` buffer with ``init(rowMajor:)``, or pick two columns of a flat `[n, d]` table with
/// ``init(rowMajor:dimension:xColumn:yColumn:)``. Non-finite coordinates are allowed; plots skip such points.
public struct Points2D: Sendable, Equatable {
    /// The x coordinates, one per point.
    public var xs: [Double]
    /// The y coordinates, one per point (same count as `xs`).
    public var ys: [Double]

    /// Creates points from parallel coordinate arrays. Precondition: `xs.count == ys.count`.
    public init(xs: [Double], ys: [Double]) {
        precondition(xs.count == ys.count, "Points2D: xs and ys must have the same count")
        self.xs = xs
        self.ys = ys
    }

    /// Creates points from a flat row-major buffer of shape `[n, 2]`: `[x0, y0, x1, y1, …]`
    /// (e.g. a `[Float]` batch from the trainer). Precondition: the count is even.
    public init<T: BinaryFloatingPoint>(rowMajor values: [T]) {
        self.init(rowMajor: values, dimension: 2, xColumn: 0, yColumn: 1)
    }

    /// Creates points from columns `xColumn` and `yColumn` of a flat row-major table of shape `[n, dimension]`.
    /// Preconditions: `values.count` is a multiple of `dimension`, and both columns are in `0..<dimension`.
    public init<T: BinaryFloatingPoint>(rowMajor values: [T], dimension: Int, xColumn: Int, yColumn: Int) {
        precondition(dimension > 0 && values.count % dimension == 0, "Points2D: count must be a multiple of dimension")
        precondition((0..<dimension).contains(xColumn) && (0..<dimension).contains(yColumn), "Points2D: column out of range")
        let rows = values.count / dimension
        var xs = [Double](repeating: 0, count: rows)
        var ys = [Double](repeating: 0, count: rows)
        for row in 0..<rows {
            xs[row] = Double(values[row * dimension + xColumn])
            ys[row] = Double(values[row * dimension + yColumn])
        }
        self.xs = xs
        self.ys = ys
    }

    /// No points.
    public static let empty = Points2D(xs: [], ys: [])

    /// The number of points (including non-finite ones).
    public var count: Int { xs.count }

    /// The number of points whose two coordinates are both finite.
    public var finiteCount: Int {
        var total = 0
        for index in 0..<count where xs[index].isFinite && ys[index].isFinite { total += 1 }
        return total
    }
}
