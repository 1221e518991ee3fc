/// Squeeze (RealNVP §3.6): 2×2 space-to-depth, `[C, H, W]` → `[4C, H/2, W/2]`, an exact permutation (log-det 0).
///
///     y[4c + 2·dy + dx, i, j] = x[c, 2i + dy, 2j + dx]        dy, dx ∈ {0, 1}
///
/// (PyTorch's `x.view(C, H/2, 2, W/2, 2).permute(0, 2, 4, 1, 3).reshape(4C, H/2, W/2)`, Glow's and normflows'
/// squeeze). Rows have `features` ≥ C·H·W values; the rest pass through unchanged.
///
/// References: Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real NVP", ICLR 2017, §3.6 and Figure 3.
///
/// Arguments: `shape` `[C, H, W]` with H and W even; `features` D. No tensors. Workspace: shared scratch
/// `squeeze.row` `[C·H·W]` (fixed) for the in-place inverse.
///
/// Example:
///
///     var buffers = WorkspaceLayout.Builder()
///     let squeeze = Squeeze<Float>(name: "levels.0.squeeze", shape: ImageShape(channels: 1, height: 28, width: 28),
///                                  features: 784, workspace: &buffers)     // → 4×14×14
public struct Squeeze<Scalar: FlowScalar>: FlowTransform {
    public let name: String
    public let features: Int
    /// The input shape `[C, H, W]`; the output is ``ImageShape/squeezed``.
    public let shape: ImageShape
    let row: WorkspaceBuffer

    /// A squeeze of `shape` (H, W even) in rows of `features` values.
    public init(name: String, shape: ImageShape, features: Int, workspace: inout WorkspaceLayout.Builder) {
        precondition(shape.height % 2 == 0 && shape.width % 2 == 0, "\(name): squeeze needs an even height and width, not \(shape)")
        precondition(features >= shape.count)
        self.name = name
        self.shape = shape
        self.features = features
        row = workspace.scratch("squeeze.row", perRow: 0, fixed: shape.count)
    }

    /// y = squeeze(x) on one image's active part (x and y distinct); `inverse` swaps the roles.
    @inline(__always)
    func permute(_ x: UnsafePointer<Scalar>, _ y: UnsafeMutablePointer<Scalar>, inverse: Bool) {
        let H2 = shape.height / 2, W2 = shape.width / 2, W = shape.width
        for c in 0..<shape.channels {
            for dy in 0..<2 {
                for dx in 0..<2 {
                    let plane = (4 * c + 2 * dy + dx) * H2 * W2
                    for i in 0..<H2 {
                        for j in 0..<W2 {
                            let from = c * shape.pixels + (2 * i + dy) * W + 2 * j + dx, to = plane + i * W2 + j
                            if inverse { y[from] = x[to] } else { y[to] = x[from] }
                        }
                    }
                }
            }
        }
    }

    public func forward(
        _ x: UnsafePointer<Scalar>, rows n: Int, parameters p: UnsafePointer<Scalar>, workspace ws: FlowWorkspace<Scalar>,
        output y: UnsafeMutablePointer<Scalar>, logDet: UnsafeMutablePointer<Scalar>
    ) {
        let D = features, A = shape.count
        for i in 0..<n {
            permute(x + i * D, y + i * D, inverse: false)
            (y + i * D + A).update(from: x + i * D + A, count: D - A)
        }
    }

    public func backward(
        _ dy: UnsafePointer<Scalar>, dLogDet: Scalar, input x: UnsafePointer<Scalar>, rows n: Int,
        parameters p: UnsafePointer<Scalar>, gradient g: UnsafeMutablePointer<Scalar>, accumulate: Bool,
        workspace ws: FlowWorkspace<Scalar>, dx: UnsafeMutablePointer<Scalar>?
    ) {
        guard let dx else { return }
        // A permutation: dx = Pᵀ dy.
        let D = features, A = shape.count
        for i in 0..<n {
            permute(dy + i * D, dx + i * D, inverse: true)
            (dx + i * D + A).update(from: dy + i * D + A, count: D - A)
        }
    }

    public func inverse(
        _ y: UnsafePointer<Scalar>, rows n: Int, parameters p: UnsafePointer<Scalar>, workspace ws: FlowWorkspace<Scalar>,
        output x: UnsafeMutablePointer<Scalar>
    ) {
        let D = features, A = shape.count, tmp = ws[row]
        for i in 0..<n {
            // x may alias y: the image goes through the scratch row.
            tmp.update(from: y + i * D, count: A)
            permute(tmp, x + i * D, inverse: true)
            if UnsafePointer(x) != y { (x + i * D + A).update(from: y + i * D + A, count: D - A) }
        }
    }
}
