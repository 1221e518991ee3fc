/// A row-major matrix `[rows, columns]` owning its elements: element (i, j) is `values[i * columns + j]`.
///
/// The currency type for data sets, latents and samples at API boundaries. Hot loops work on
/// ``AlignedBuffer``s and raw pointers instead.
public struct Matrix<Scalar>: Sendable, Equatable where Scalar: Sendable & Equatable {
    /// Number of rows (batch size, samples).
    public var rows: Int
    /// Number of columns (features, D).
    public var columns: Int
    /// The `rows × columns` elements, row-major.
    public var values: [Scalar]

    /// A matrix from row-major `values`; `values.count` must equal `rows * columns`.
    public init(rows: Int, columns: Int, values: [Scalar]) {
        precondition(rows >= 0 && columns >= 0 && values.count == rows * columns,
                     "Matrix: \(values.count) values for shape [\(rows), \(columns)]")
        self.rows = rows
        self.columns = columns
        self.values = values
    }

    /// A matrix of `rows × columns` copies of `value`.
    public init(rows: Int, columns: Int, repeating value: Scalar) {
        self.init(rows: rows, columns: columns, values: Array(repeating: value, count: rows * columns))
    }

    /// Element (i, j).
    @inlinable public subscript(i: Int, j: Int) -> Scalar {
        get { values[i * columns + j] }
        set { values[i * columns + j] = newValue }
    }

    /// Row i as an array `[columns]`.
    public func row(_ i: Int) -> [Scalar] { Array(values[(i * columns)..<((i + 1) * columns)]) }

    /// The rows at `indices`, in that order: shape `[indices.count, columns]`.
    public func gatherRows<C: Collection>(_ indices: C) -> Matrix where C.Element == Int {
        var out = [Scalar]()
        out.reserveCapacity(indices.count * columns)
        for i in indices { out.append(contentsOf: values[(i * columns)..<((i + 1) * columns)]) }
        return Matrix(rows: indices.count, columns: columns, values: out)
    }

    /// Column j as an array `[rows]`.
    public func column(_ j: Int) -> [Scalar] { (0..<rows).map { values[$0 * columns + j] } }

    /// Columns `range` of every row: shape `[rows, range.count]` (e.g. a conditional data set's context, its last
    /// K columns).
    public func columns(_ range: Range<Int>) -> Matrix {
        precondition(range.lowerBound >= 0 && range.upperBound <= columns, "columns \(range) of a matrix of \(columns)")
        var out = [Scalar]()
        out.reserveCapacity(rows * range.count)
        for i in 0..<rows { out.append(contentsOf: values[(i * columns + range.lowerBound)..<(i * columns + range.upperBound)]) }
        return Matrix(rows: rows, columns: range.count, values: out)
    }

    /// `left` and `right` side by side, row by row: `[rows, left.columns + right.columns]`; a `right` of one row is
    /// repeated beside every row of `left` (a conditional flow's rows [x, c] with one context for all).
    public static func concatenatingColumns(_ left: Matrix, _ right: Matrix) -> Matrix {
        precondition(left.rows == right.rows || right.rows == 1, "concatenating \(left.rows) rows with \(right.rows)")
        var out = [Scalar]()
        out.reserveCapacity(left.rows * (left.columns + right.columns))
        for i in 0..<left.rows {
            let r = right.rows == 1 ? 0 : i
            out.append(contentsOf: left.values[(i * left.columns)..<((i + 1) * left.columns)])
            out.append(contentsOf: right.values[(r * right.columns)..<((r + 1) * right.columns)])
        }
        return Matrix(rows: left.rows, columns: left.columns + right.columns, values: out)
    }
}

extension Matrix where Scalar: BinaryFloatingPoint {
    /// Converts element-wise to another floating-point type (rounding to nearest).
    public func converted<T: BinaryFloatingPoint & Sendable>(to: T.Type = T.self) -> Matrix<T> {
        Matrix<T>(rows: rows, columns: columns, values: values.map { T($0) })
    }
}
