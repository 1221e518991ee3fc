import Foundation
import Testing
@testable import FlowCore

/// The checks every ``FlowTransform`` passes, written once and run for each (Float64): the exact inverse, the
/// log-det against a brute-force Jacobian, parameter and input gradients against central differences, and n rows
/// at once against n single rows. A new transform adds one line to `cases`.
@Suite("Shared transform tests (Float64)")
struct TransformTests {
    struct Case: CustomStringConvertible, Sendable {
        var description: String
        var features: Int
        /// Maps a standard-normal draw into the transform's input domain (the identity for transforms on ℝ^D).
        var domain: @Sendable (Double) -> Double = { $0 }
        /// Declares the transform (its tensors and buffers) with the builders.
        var make: @Sendable (inout ParameterLayout.Builder, inout WorkspaceLayout.Builder) -> AnyFlowTransform<Double>
    }

    static let cases: [Case] = [
        Case(description: "Standardization D=3", features: 3) { _, _ in
            AnyFlowTransform(Standardization(normalizer: Normalizer(mean: [0.5, -1, 2], std: [0.25, 2, 3])))
        },
        Case(description: "AffineCoupling D=2 alternating", features: 2) { p, w in
            p.beginTransform()
            return AnyFlowTransform(AffineCoupling<Double>(name: "c", mask: [0, 1], hidden: 5, hiddenLayers: 2,
                                                           learnableScale: false, parameters: &p, workspace: &w))
        },
        Case(description: "AffineCoupling D=5 checkerboard, learnable scale", features: 5) { p, w in
            p.beginTransform()
            return AnyFlowTransform(AffineCoupling<Double>(name: "c", mask: [1, 0, 1, 0, 1], hidden: 6, hiddenLayers: 3,
                                                           learnableScale: true, parameters: &p, workspace: &w))
        },
        Case(description: "ActNorm D=4", features: 4) { p, w in
            p.beginTransform()
            return AnyFlowTransform(ActNorm<Double>(name: "a", features: 4, parameters: &p, workspace: &w))
        },
        // Dequantised values in (0, 17): 17 / (1 + e^−v) for a normal draw v.
        Case(description: "LogitPreprocessing D=3, 17 levels", features: 3, domain: { 17 / (1 + exp(-$0)) }) { _, _ in
            AnyFlowTransform(LogitPreprocessing(levels: 17, alpha: 0.05, features: 3))
        },
    ]

    /// A built transform with random (not freshly initialised) parameters, so that no term vanishes.
    struct Built {
        let transform: AnyFlowTransform<Double>
        let layout: ParameterLayout
        var parameters: [Double]
        let workspace: FlowWorkspace<Double>

        init(_ c: Case, rows: Int) {
            var p = ParameterLayout.Builder(), w = WorkspaceLayout.Builder()
            transform = c.make(&p, &w)
            layout = p.layout()
            workspace = FlowWorkspace(layout: w.layout(), capacity: rows)
            var values = RealNVP<Double>.initialParameters(layout: layout, seed: 3)
            let r = RandomStream(seed: 3, purpose: .auxiliary, substream: 41)
            for slot in layout.tensors {
                for e in 0..<slot.count { values[slot.offset + e] += 0.3 * r.normal(UInt64(slot.offset + e)) }
            }
            parameters = values
        }

        /// y `[n, D]` and the per-row log-det including the constant.
        func forward(_ x: [Double], rows n: Int) -> (y: [Double], logDet: [Double]) {
            var y = [Double](repeating: 0, count: x.count), ld = [Double](repeating: 0, count: n)
            parameters.withUnsafeBufferPointer { p in
                transform.forward(x, rows: n, parameters: p.baseAddress!, workspace: workspace, output: &y, logDet: &ld)
            }
            return (y, ld.map { $0 + transform.constantLogDet })
        }

        func inverse(_ y: [Double], rows n: Int) -> [Double] {
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

        func gradients(_ x: [Double], rows n: Int, weights w: [Double], lambda: Double) -> (parameters: [Double], input: [Double]) {
            _ = forward(x, rows: n)
            var g = [Double](repeating: .nan, count: parameters.count), dx = [Double](repeating: 0, count: x.count)
            parameters.withUnsafeBufferPointer { p in
                transform.backward(w, dLogDet: lambda, input: x, rows: n, parameters: p.baseAddress!, gradient: &g,
                                   accumulate: false, workspace: workspace, dx: &dx)
            }
            return (g, dx)
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
                let yu = t.forward(up, rows: 1).y, yd = t.forward(down, rows: 1).y
                for a in 0..<D { J[a][b] = (yu[a] - yd[a]) / 2e-6 }
            }
            let bruteForce = GradientCheckTests.logAbsDeterminant(J)
            #expect(abs(bruteForce - logDet[i]) <= 1e-7 * max(1, abs(logDet[i])), "\(c) row \(i): \(logDet[i]) vs \(bruteForce)")
        }
    }

    @Test("parameter and input gradients of Σ w⊙y + λ·Σ log-det against central differences", arguments: cases)
    func gradientsAgainstFiniteDifferences(c: Case) {
        let n = 5, D = c.features
        var t = Built(c, rows: n)
        let x = Self.data(c, rows: n, seed: 3)
        let w = Self.data(rows: n, features: D, seed: 4)
        let lambda = -0.7
        let (g, dx) = t.gradients(x, rows: n, weights: w, lambda: lambda)
        let h = 1e-6
        for slot in t.layout.tensors {
            for e in 0..<slot.count {
                let i = slot.offset + e, saved = t.parameters[i]
                t.parameters[i] = saved + h
                let up = t.loss(x, rows: n, weights: w, lambda: lambda)
                t.parameters[i] = saved - h
                let down = t.loss(x, rows: n, weights: w, lambda: lambda)
                t.parameters[i] = saved
                let numeric = (up - down) / (2 * h)
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
            let (yi, li) = t.forward(Self.row(x, i, features: D), rows: 1)
            for j in 0..<D { #expect(abs(yi[j] - y[i * D + j]) <= 1e-14 * max(1, abs(yi[j])), "\(c) row \(i) feature \(j)") }
            #expect(abs(li[0] - logDet[i]) <= 1e-14 * max(1, abs(li[0])), "\(c) row \(i) log-det")
        }
    }
}
