import Foundation
import Testing
@testable import FlowCore

/// The checks every ``FlowTransform`` passes, written once and run for each (Float64): the exact inverse, the
/// log-det against a brute-force Jacobian, parameter and input gradients against central differences, and n rows
/// at once against n single rows. A new transform adds one line to `cases`. A conditional transform (a `Case` with
/// `contextFeatures` K > 0) gets its context c `[n, K]` held fixed through these checks, plus dL/dc against central
/// differences.
@Suite("Shared transform tests (Float64)")
struct TransformTests {
    struct Case: CustomStringConvertible, Sendable {
        var description: String
        var features: Int
        /// Maps a standard-normal draw into the transform's input domain (the identity for transforms on ℝ^D).
        var domain: @Sendable (Double) -> Double = { $0 }
        /// Context values per row K (0: not conditional).
        var contextFeatures = 0
        /// Declares the transform (its tensors and buffers) with the builders, reading the context's buffers when K > 0.
        var make: @Sendable (inout ParameterLayout.Builder, inout WorkspaceLayout.Builder, CouplingContext?) -> AnyFlowTransform<Double>
    }

    static let cases: [Case] = [
        Case(description: "Standardization D=3", features: 3) { _, _, _ in
            AnyFlowTransform(Standardization(normalizer: Normalizer(mean: [0.5, -1, 2], std: [0.25, 2, 3])))
        },
        Case(description: "AffineCoupling D=2 alternating", features: 2) { p, w, _ in
            p.beginTransform()
            return AnyFlowTransform(AffineCoupling<Double>(name: "c", mask: [0, 1], hidden: 5, hiddenLayers: 2,
                                                           learnableScale: false, parameters: &p, workspace: &w))
        },
        Case(description: "AffineCoupling D=5 checkerboard, learnable scale", features: 5) { p, w, _ in
            p.beginTransform()
            return AnyFlowTransform(AffineCoupling<Double>(name: "c", mask: [1, 0, 1, 0, 1], hidden: 6, hiddenLayers: 3,
                                                           learnableScale: true, parameters: &p, workspace: &w))
        },
        Case(description: "conditional AffineCoupling D=2, K=3", features: 2, contextFeatures: 3) { p, w, context in
            p.beginTransform()
            return AnyFlowTransform(AffineCoupling<Double>(name: "c", mask: [0, 1], hidden: 5, hiddenLayers: 2,
                                                           learnableScale: false, context: context, parameters: &p, workspace: &w))
        },
        Case(description: "conditional AffineCoupling D=5 checkerboard, K=1, learnable scale", features: 5, contextFeatures: 1) { p, w, context in
            p.beginTransform()
            return AnyFlowTransform(AffineCoupling<Double>(name: "c", mask: [0, 1, 0, 1, 0], hidden: 4, hiddenLayers: 1,
                                                           learnableScale: true, context: context, parameters: &p, workspace: &w))
        },
        Case(description: "ActNorm D=4", features: 4) { p, w, _ in
            p.beginTransform()
            return AnyFlowTransform(ActNorm<Double>(name: "a", features: 4, parameters: &p, workspace: &w))
        },
        Case(description: "Squeeze 2×4×6 in D=53", features: 53) { _, w, _ in
            AnyFlowTransform(Squeeze<Double>(name: "q", shape: ImageShape(channels: 2, height: 4, width: 6), features: 53, workspace: &w))
        },
        Case(description: "ImageActNorm 3×2×3 in D=20", features: 20) { p, w, _ in
            p.beginTransform()
            return AnyFlowTransform(ImageActNorm<Double>(name: "a", shape: ImageShape(channels: 3, height: 2, width: 3),
                                                         features: 20, parameters: &p, workspace: &w))
        },
        Case(description: "ImageBatchNorm 3×2×3 in D=20 (evaluation: running averages)", features: 20) { p, w, _ in
            p.beginTransform()
            return AnyFlowTransform(ImageBatchNorm<Double>(name: "b", shape: ImageShape(channels: 3, height: 2, width: 3),
                                                           features: 20, parameters: &p, workspace: &w))
        },
        Case(description: "ImageAffineCoupling 2×4×4 checkerboard (even), ResNet 3 channels × 1 block, D=35", features: 35) { p, w, _ in
            p.beginTransform()
            return AnyFlowTransform(ImageAffineCoupling<Double>(
                name: "c", shape: ImageShape(channels: 2, height: 4, width: 4), mask: .checkerboard(evenConditions: true),
                features: 35, channels: 3, blocks: 1, parameters: &p, workspace: &w))
        },
        Case(description: "ImageAffineCoupling 1×5×3 checkerboard (odd), ResNet 2 channels × 2 blocks", features: 15) { p, w, _ in
            p.beginTransform()
            return AnyFlowTransform(ImageAffineCoupling<Double>(
                name: "c", shape: ImageShape(channels: 1, height: 5, width: 3), mask: .checkerboard(evenConditions: false),
                features: 15, channels: 2, blocks: 2, parameters: &p, workspace: &w))
        },
        Case(description: "ImageAffineCoupling 4×3×3 channel-wise (second half conditions), ResNet 2 × 1, D=40", features: 40) { p, w, _ in
            p.beginTransform()
            return AnyFlowTransform(ImageAffineCoupling<Double>(
                name: "c", shape: ImageShape(channels: 4, height: 3, width: 3), mask: .channels(firstHalfConditions: false),
                features: 40, channels: 2, blocks: 1, parameters: &p, workspace: &w))
        },
        Case(description: "conditional ImageAffineCoupling 2×4×4 checkerboard (odd), ResNet 3 × 1, K=3, D=33", features: 33, contextFeatures: 3) { p, w, context in
            p.beginTransform()
            return AnyFlowTransform(ImageAffineCoupling<Double>(
                name: "c", shape: ImageShape(channels: 2, height: 4, width: 4), mask: .checkerboard(evenConditions: false),
                features: 33, channels: 3, blocks: 1, context: context, parameters: &p, workspace: &w))
        },
        Case(description: "conditional ImageAffineCoupling 4×2×3 channel-wise (first half conditions), ResNet 2 × 2, K=2", features: 24, contextFeatures: 2) { p, w, context in
            p.beginTransform()
            return AnyFlowTransform(ImageAffineCoupling<Double>(
                name: "c", shape: ImageShape(channels: 4, height: 2, width: 3), mask: .channels(firstHalfConditions: true),
                features: 24, channels: 2, blocks: 2, context: context, parameters: &p, workspace: &w))
        },
        // Dequantised values in (0, 17): 17 / (1 + e^−v) for a normal draw v.
        Case(description: "LogitPreprocessing D=3, 17 levels", features: 3, domain: { 17 / (1 + exp(-$0)) }) { _, _, _ in
            AnyFlowTransform(LogitPreprocessing(levels: 17, alpha: 0.05, features: 3))
        },
    ]

    /// A built transform with random (not freshly initialised) parameters, so that no term vanishes.
    struct Built {
        let transform: AnyFlowTransform<Double>
        let layout: ParameterLayout
        var parameters: [Double]
        let workspace: FlowWorkspace<Double>
        /// The context buffers of a conditional transform.
        let context: CouplingContext?
        /// The context c `[rows, K]` of the rows of a pass (row i of a one-row pass `firstRow` = i).
        var contextValues: [Double]

        init(_ c: Case, rows: Int) {
            var p = ParameterLayout.Builder(), w = WorkspaceLayout.Builder()
            context = c.contextFeatures > 0 ? CouplingContext(features: c.contextFeatures, workspace: &w) : nil
            transform = c.make(&p, &w, context)
            layout = p.layout()
            workspace = FlowWorkspace(layout: w.layout(), capacity: rows)
            contextValues = TransformTests.data(rows: rows, features: c.contextFeatures, seed: 77)
            var values = RealNVP<Double>.initialParameters(layout: layout, seed: 3)
            let r = RandomStream(seed: 3, purpose: .auxiliary, substream: 41)
            for slot in layout.tensors {
                for e in 0..<slot.count { values[slot.offset + e] += 0.3 * r.normal(UInt64(slot.offset + e)) }
            }
            parameters = values
        }

        /// Writes the contexts of rows `firstRow ..< firstRow + n` into the workspace (nothing when not conditional).
        func setContext(rows n: Int, firstRow: Int) {
            guard let context else { return }
            let K = context.features
            let dst = workspace[context.values]
            for e in 0..<(n * K) { dst[e] = contextValues[firstRow * K + e] }
        }

        /// y `[n, D]` and the per-row log-det including the constant; the rows' contexts are rows `firstRow…`.
        func forward(_ x: [Double], rows n: Int, firstRow: Int = 0) -> (y: [Double], logDet: [Double]) {
            setContext(rows: n, firstRow: firstRow)
            var y = [Double](repeating: 0, count: x.count), ld = [Double](repeating: 0, count: n)
            parameters.withUnsafeBufferPointer { p in
                transform.forward(x, rows: n, parameters: p.baseAddress!, workspace: workspace, output: &y, logDet: &ld)
            }
            return (y, ld.map { $0 + transform.constantLogDet })
        }

        func inverse(_ y: [Double], rows n: Int) -> [Double] {
            setContext(rows: n, firstRow: 0)
            var x = [Double](repeating: 0, count: y.count)
            parameters.withUnsafeBufferPointer { p in
                transform.inverse(y, rows: n, parameters: p.baseAddress!, workspace: workspace, output: &x)
            }
            return x
        }

        /// L = Σ w ⊙ y + λ·Σ_rows log-det, and its gradients from the backward pass.
        func loss(_ x: [Double], rows n: Int, weights w: [Double], lambda: Double) -> Double {
            let (y, ld) = forward(x, rows: n)
            return zip(w, y).reduce(0) { $0 + $1.0 * $1.1 } + lambda * ld.reduce(0, +)
        }

        /// (L(v + h) − L(v − h)) / 2h of ``loss(_:rows:weights:lambda:)`` for element `e` of the values at `path`
        /// (the parameters, or the contexts), h = 1e-6.
        mutating func centralDifference(_ path: WritableKeyPath<Built, [Double]>, _ e: Int, _ x: [Double], rows n: Int,
                                        weights w: [Double], lambda: Double) -> Double {
            let h = 1e-6, saved = self[keyPath: path][e]
            self[keyPath: path][e] = saved + h
            let up = loss(x, rows: n, weights: w, lambda: lambda)
            self[keyPath: path][e] = saved - h
            let down = loss(x, rows: n, weights: w, lambda: lambda)
            self[keyPath: path][e] = saved
            return (up - down) / (2 * h)
        }

        /// The gradients of ``loss(_:rows:weights:lambda:)``: parameters, input, and the context `[n, K]` (empty
        /// when not conditional).
        func gradients(_ x: [Double], rows n: Int, weights w: [Double], lambda: Double) -> (parameters: [Double], input: [Double], context: [Double]) {
            _ = forward(x, rows: n)
            if let context { workspace[context.gradient].update(repeating: 0, count: n * context.features) }
            var g = [Double](repeating: .nan, count: parameters.count), dx = [Double](repeating: 0, count: x.count)
            parameters.withUnsafeBufferPointer { p in
                transform.backward(w, dLogDet: lambda, input: x, rows: n, parameters: p.baseAddress!, gradient: &g,
                                   accumulate: false, workspace: workspace, dx: &dx)
            }
            let dc = context.map { Array(UnsafeBufferPointer(start: workspace[$0.gradient], count: n * $0.features)) } ?? []
            return (g, dx, dc)
        }
    }

    /// Row i of `x` `[n, D]`.
    static func row(_ x: [Double], _ i: Int, features D: Int) -> [Double] { Array(x[(i * D)..<((i + 1) * D)]) }

    static func data(rows: Int, features: Int, seed: UInt32) -> [Double] {
        let r = RandomStream(seed: 8, purpose: .auxiliary, substream: seed)
        return (0..<(rows * features)).map { r.normal(UInt64($0)) }
    }

    /// Inputs `[rows, features]` in the domain of `c`'s transform.
    static func data(_ c: Case, rows: Int, seed: UInt32) -> [Double] {
        data(rows: rows, features: c.features, seed: seed).map(c.domain)
    }

    @Test("inverse(forward(x)) = x, in place too", arguments: cases)
    func exactInverse(c: Case) {
        let n = 7
        let t = Built(c, rows: n)
        let x = Self.data(c, rows: n, seed: 1)
        let (y, _) = t.forward(x, rows: n)
        #expect(y != x, "the transform (with random parameters) is not the identity")
        let back = t.inverse(y, rows: n)
        for e in x.indices { #expect(abs(back[e] - x[e]) <= 1e-13 * max(1, abs(x[e])), "\(c) element \(e): \(back[e]) vs \(x[e])") }
        // in place: output aliases input
        var inPlace = y
        t.parameters.withUnsafeBufferPointer { p in
            inPlace.withUnsafeMutableBufferPointer { b in
                t.transform.inverse(b.baseAddress!, rows: n, parameters: p.baseAddress!, workspace: t.workspace, output: b.baseAddress!)
            }
        }
        #expect(inPlace == back)
    }

    @Test("per-row log-det = log|det J| of a brute-force central-difference Jacobian", arguments: cases)
    func logDetAgainstJacobian(c: Case) {
        let n = 4, D = c.features
        let t = Built(c, rows: n)
        let x = Self.data(c, rows: n, seed: 2)
        let (_, logDet) = t.forward(x, rows: n)
        for i in 0..<n {
            var J = [[Double]](repeating: [Double](repeating: 0, count: D), count: D)
            for b in 0..<D {
                var up = Self.row(x, i, features: D), down = up
                up[b] += 1e-6
                down[b] -= 1e-6
                let yu = t.forward(up, rows: 1, firstRow: i).y, yd = t.forward(down, rows: 1, firstRow: i).y
                for a in 0..<D { J[a][b] = (yu[a] - yd[a]) / 2e-6 }
            }
            let bruteForce = GradientCheckTests.logAbsDeterminant(J)
            #expect(abs(bruteForce - logDet[i]) <= 1e-7 * max(1, abs(logDet[i])), "\(c) row \(i): \(logDet[i]) vs \(bruteForce)")
        }
    }

    static let couplingCases = cases.filter { $0.description.contains("Coupling") }

    @Test("couplings: the transformed part depends on the conditioning part (the Jacobian is not diagonal)", arguments: couplingCases)
    func conditioningReachesTheTransformedPart(c: Case) {
        // A coupling whose s and t never saw b ⊙ x would still be invertible with a matching log-det, but it would be
        // a fixed element-wise map: every test above would pass.
        let D = c.features
        let t = Built(c, rows: 1)
        let x = Self.data(c, rows: 1, seed: 9)
        var offDiagonal = 0.0
        for b in 0..<D {
            var up = x, down = x
            up[b] += 1e-6
            down[b] -= 1e-6
            let yu = t.forward(up, rows: 1).y, yd = t.forward(down, rows: 1).y
            for a in 0..<D where a != b { offDiagonal = max(offDiagonal, abs(yu[a] - yd[a]) / 2e-6) }
        }
        #expect(offDiagonal > 1e-3, "\(c): largest off-diagonal |∂y_a/∂x_b| = \(offDiagonal)")
    }

    @Test("parameter and input gradients of Σ w⊙y + λ·Σ log-det against central differences", arguments: cases)
    func gradientsAgainstFiniteDifferences(c: Case) {
        let n = 5, D = c.features
        var t = Built(c, rows: n)
        let x = Self.data(c, rows: n, seed: 3)
        let w = Self.data(rows: n, features: D, seed: 4)
        let lambda = -0.7
        let (g, dx, _) = t.gradients(x, rows: n, weights: w, lambda: lambda)
        let h = 1e-6
        for slot in t.layout.tensors {
            for e in 0..<slot.count {
                let i = slot.offset + e
                let numeric = t.centralDifference(\.parameters, i, x, rows: n, weights: w, lambda: lambda)
                #expect(abs(numeric - g[i]) <= 1e-6 * max(1, abs(numeric)), "\(c) d/d \(slot.name)[\(e)]: \(g[i]) vs \(numeric)")
            }
        }
        for e in x.indices {
            var up = x, down = x
            up[e] += h
            down[e] -= h
            let numeric = (t.loss(up, rows: n, weights: w, lambda: lambda) - t.loss(down, rows: n, weights: w, lambda: lambda)) / (2 * h)
            #expect(abs(numeric - dx[e]) <= 1e-6 * max(1, abs(numeric)), "\(c) dL/dx[\(e)]: \(dx[e]) vs \(numeric)")
        }
        // accumulate: a second backward adds the same gradient
        _ = t.forward(x, rows: n)
        var twice = g
        t.parameters.withUnsafeBufferPointer { p in
            t.transform.backward(w, dLogDet: lambda, input: x, rows: n, parameters: p.baseAddress!, gradient: &twice,
                                 accumulate: true, workspace: t.workspace, dx: nil)
        }
        for slot in t.layout.tensors {
            for e in 0..<slot.count {
                let i = slot.offset + e
                #expect(abs(twice[i] - 2 * g[i]) <= 1e-12 * max(1, abs(g[i])), "\(c) accumulate \(slot.name)[\(e)]")
            }
        }
    }

    @Test("forward on n rows = n forwards of one row", arguments: cases)
    func rowsAreIndependent(c: Case) {
        let n = 6, D = c.features
        let t = Built(c, rows: n)
        let x = Self.data(c, rows: n, seed: 5)
        let (y, logDet) = t.forward(x, rows: n)
        for i in 0..<n {
            let (yi, li) = t.forward(Self.row(x, i, features: D), rows: 1, firstRow: i)
            for j in 0..<D { #expect(abs(yi[j] - y[i * D + j]) <= 1e-14 * max(1, abs(yi[j])), "\(c) row \(i) feature \(j)") }
            #expect(abs(li[0] - logDet[i]) <= 1e-14 * max(1, abs(li[0])), "\(c) row \(i) log-det")
        }
    }

    static let conditionalCases = cases.filter { $0.contextFeatures > 0 }

    @Test("conditional: dL/dc against central differences, and c changes y and the log-det", arguments: conditionalCases)
    func contextGradient(c: Case) {
        let n = 5, D = c.features, K = c.contextFeatures
        var t = Built(c, rows: n)
        let x = Self.data(c, rows: n, seed: 6)
        let w = Self.data(rows: n, features: D, seed: 7)
        let lambda = 0.9
        let (_, _, dc) = t.gradients(x, rows: n, weights: w, lambda: lambda)
        #expect(dc.count == n * K)
        for e in 0..<(n * K) {
            let numeric = t.centralDifference(\.contextValues, e, x, rows: n, weights: w, lambda: lambda)
            #expect(abs(numeric - dc[e]) <= 1e-6 * max(1, abs(numeric)), "\(c) dL/dc[\(e)]: \(dc[e]) vs \(numeric)")
            #expect(numeric != 0, "\(c): c[\(e)] has no effect on the loss")
        }
        // Another context: another y and log-det for the same x; the inverse under that context is exact again.
        let (y, ld) = t.forward(x, rows: n)
        t.contextValues = t.contextValues.map { $0 + 0.5 }
        let (y2, ld2) = t.forward(x, rows: n)
        #expect(y2 != y && ld2 != ld)
        let back = t.inverse(y2, rows: n)
        for e in x.indices { #expect(abs(back[e] - x[e]) <= 1e-13 * max(1, abs(x[e])), "\(c) element \(e)") }
    }
}
