import Foundation
import Testing
@testable import FlowCore

/// Finite-difference checks of the hand-written backward pass, in Float64.
@Suite("Finite-difference gradient checks (Float64)")
struct GradientCheckTests {
    struct Case: CustomStringConvertible, Sendable {
        var dim: Int, couplings: Int, hidden: Int, layers: Int, mask: MaskScheme, scale: Bool, actNorm = false
        /// Context values per row of a conditional flow (0: unconditional).
        var context = 0
        var description: String {
            "D=\(dim) couplings=\(couplings) H=\(hidden)×\(layers) \(mask)\(scale ? " +scale" : "")\(actNorm ? " +actnorm" : "")\(context > 0 ? " context=\(context)" : "")"
        }
        var configuration: FlowConfiguration {
            FlowConfiguration(dim: dim, couplings: couplings, hidden: hidden, hiddenLayers: layers, maskScheme: mask,
                              learnableScale: scale, actNorm: actNorm, contextFeatures: context)
        }
    }
    static let cases: [Case] = [
        Case(dim: 2, couplings: 3, hidden: 5, layers: 2, mask: .alternating, scale: false),
        Case(dim: 3, couplings: 4, hidden: 7, layers: 1, mask: .checkerboard, scale: false),
        Case(dim: 7, couplings: 3, hidden: 9, layers: 3, mask: .alternating, scale: true),
        Case(dim: 7, couplings: 2, hidden: 3, layers: 2, mask: .checkerboard, scale: true),
        Case(dim: 4, couplings: 5, hidden: 6, layers: 2, mask: .checkerboard, scale: false),  // 5 > 4 rows: chunking unaffected
        Case(dim: 3, couplings: 2, hidden: 5, layers: 2, mask: .alternating, scale: true, actNorm: true),
        Case(dim: 2, couplings: 3, hidden: 5, layers: 2, mask: .alternating, scale: false, context: 2),
        Case(dim: 3, couplings: 2, hidden: 4, layers: 1, mask: .checkerboard, scale: true, actNorm: true, context: 1),
    ]

    /// A model with random (not freshly initialised) parameters so that no gradient term vanishes.
    static func randomModel(_ c: Case, seed: UInt64) throws -> RealNVP<Double> {
        var m = try RealNVP<Double>(configuration: c.configuration, seed: seed)
        let r = RandomStream(seed: seed, purpose: .auxiliary, substream: 77)
        for slot in m.network.layout.tensors {
            for e in 0..<slot.count {
                let noise = 0.3 * r.normal(UInt64(slot.offset + e))
                m.parameters[slot.offset + e] += slot.name.hasSuffix("scale") ? 0.2 * noise : noise  // scale, log_scale
            }
        }
        m.normalizer = Normalizer(mean: (0..<c.dim).map { 0.1 * Double($0) }, std: (0..<c.dim).map { 0.5 + 0.25 * Double($0) })
        if c.context > 0 {
            m.contextNormalizer = Normalizer(mean: (0..<c.context).map { -0.2 * Double($0) }, std: (0..<c.context).map { 1.5 - 0.5 * Double($0) })
        }
        return m
    }

    /// The context `[rows, K]` of a conditional case, nil otherwise.
    static func context(_ c: Case, rows: Int, seed: UInt64) -> Matrix<Double>? {
        guard c.context > 0 else { return nil }
        let r = RandomStream(seed: seed, purpose: .auxiliary, substream: 6)
        return Matrix(rows: rows, columns: c.context, values: (0..<(rows * c.context)).map { r.normal(UInt64($0)) })
    }

    static func data(_ c: Case, rows: Int, seed: UInt64) -> Matrix<Double> {
        let r = RandomStream(seed: seed, purpose: .auxiliary, substream: 5)
        return Matrix(rows: rows, columns: c.dim, values: (0..<(rows * c.dim)).map { r.normal(UInt64($0)) })
    }

    @Test("every parameter's gradient of loss with L2 against central differences", arguments: cases)
    func parameterGradients(c: Case) throws {
        var model = try Self.randomModel(c, seed: 11)
        let x = Self.data(c, rows: 6, seed: 2)
        let context = Self.context(c, rows: 6, seed: 2)
        let l2 = 0.003
        let analytic = model.lossAndGradient(x, context: context, l2: l2).gradient
        let h = 1e-6  // small, so that no ReLU kink is crossed
        var worst = 0.0
        for slot in model.network.layout.tensors {
            for e in 0..<slot.count {
                let i = slot.offset + e
                let saved = model.parameters[i]
                func loss(at v: Double) -> Double {
                    model.parameters[i] = v
                    return model.lossAndGradient(x, context: context, l2: l2).loss
                }
                // Five-point stencil: truncation O(h⁴), rounding O(ε·|L|/h) ≈ 1e-9 absolute.
                let numeric = (8 * (loss(at: saved + h) - loss(at: saved - h)) - (loss(at: saved + 2 * h) - loss(at: saved - 2 * h))) / (12 * h)
                model.parameters[i] = saved
                // A wrong term is off by the size of the gradient itself.
                let err = abs(numeric - analytic[i]) / (1e-2 + abs(numeric))
                worst = max(worst, err)
                #expect(abs(numeric - analytic[i]) <= 1e-6 * abs(numeric) + 1e-8, "\(c) d/d \(slot.name)[\(e)]: analytic \(analytic[i]), numeric \(numeric)")
            }
        }
        #expect(worst < 1e-6, "worst relative error \(worst)")
    }

    @Test("dL/dx (and dL/dc when conditional) of the summed NLL against central differences", arguments: cases)
    func inputGradient(c: Case) throws {
        let model = try Self.randomModel(c, seed: 5)
        let x = Self.data(c, rows: 3, seed: 9)
        // data units: the chain starts with the normaliser; a conditional flow's rows are [x, c]
        let u = Self.context(c, rows: 3, seed: 9).map { Matrix.concatenatingColumns(x, $0) } ?? x
        let ws = model.network.makeWorkspace(capacity: 3)
        var g = [Double](repeating: 0, count: model.parameters.count)
        var dx = [Double](repeating: 0, count: x.values.count), dc = [Double](repeating: 0, count: 3 * c.context)
        func nllSum(_ u: Matrix<Double>) -> Double {
            model.parameters.withUnsafeBufferPointer { p in
                u.values.withUnsafeBufferPointer { ub in
                    model.network.forward(ub.baseAddress!, rows: u.rows, parameters: p.baseAddress!, workspace: ws)
                    return model.network.negativeLogLikelihood(rows: u.rows, workspace: ws)
                }
            }
        }
        _ = nllSum(u)
        model.parameters.withUnsafeBufferPointer { p in
            g.withUnsafeMutableBufferPointer { gb in
                dx.withUnsafeMutableBufferPointer { db in
                    dc.withUnsafeMutableBufferPointer { cb in
                        model.network.backwardNLL(rows: u.rows, parameters: p.baseAddress!, gradient: gb.baseAddress!,
                                                  accumulate: false, workspace: ws, dInput: db.baseAddress!,
                                                  dContext: c.context > 0 ? cb.baseAddress! : nil)
                    }
                }
            }
        }
        let W = u.columns
        for e in 0..<u.values.count {
            var up = u, down = u
            up.values[e] += 1e-5
            down.values[e] -= 1e-5
            let numeric = (nllSum(up) - nllSum(down)) / 2e-5
            let (i, j) = (e / W, e % W)
            let analytic = j < c.dim ? dx[i * c.dim + j] : dc[i * c.context + j - c.dim]
            #expect(abs(numeric - analytic) <= 1e-7 * max(1, abs(numeric)), "\(c) dL/d\(j < c.dim ? "x" : "c")[\(i), \(j)]: \(analytic) vs \(numeric)")
            if j >= c.dim { #expect(numeric != 0, "\(c): c[\(i), \(j - c.dim)] has no effect on the NLL") }
        }
    }

    @Test("log-det equals log|det J| of a brute-force numerical Jacobian, D up to 8",
          arguments: [2, 3, 5, 8])
    func logDetAgainstJacobian(dim: Int) throws {
        for mask in MaskScheme.allCases {
            let c = Case(dim: dim, couplings: 4, hidden: 6, layers: 2, mask: mask, scale: dim % 2 == 1)
            let model = try Self.randomModel(c, seed: UInt64(dim))
            let x = Self.data(c, rows: 4, seed: 1)
            let (_, logDet) = model.encode(x)
            for i in 0..<x.rows {
                // J[a][b] = ∂z_a/∂x_b by central differences on the data-space input (normaliser included).
                var J = [[Double]](repeating: [Double](repeating: 0, count: dim), count: dim)
                for b in 0..<dim {
                    var up = Matrix(rows: 1, columns: dim, values: x.row(i)), down = up
                    up.values[b] += 1e-5
                    down.values[b] -= 1e-5
                    let zu = model.encode(up).z.values, zd = model.encode(down).z.values
                    for a in 0..<dim { J[a][b] = (zu[a] - zd[a]) / 2e-5 }
                }
                let numeric = Self.logAbsDeterminant(J)
                #expect(abs(numeric - logDet[i]) < 1e-7 * max(1, abs(numeric)), "D=\(dim) \(mask) row \(i): \(logDet[i]) vs \(numeric)")
            }
        }
    }

    /// log|det A| by Gaussian elimination with partial pivoting.
    static func logAbsDeterminant(_ a: [[Double]]) -> Double {
        var m = a
        let n = m.count
        var logDet = 0.0
        for col in 0..<n {
            let pivot = (col..<n).max { abs(m[$0][col]) < abs(m[$1][col]) }!
            m.swapAt(col, pivot)
            let p = m[col][col]
            logDet += log(abs(p))
            for r in (col + 1)..<n where r < n {
                let f = m[r][col] / p
                for k in col..<n { m[r][k] -= f * m[col][k] }
            }
        }
        return logDet
    }
}
