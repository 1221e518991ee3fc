import Foundation
import Testing
@testable import FlowCore

/// The multi-scale convolutional flow as a whole (``ImageFlowArchitecture``): its structure, exact inverse, log-det
/// against a brute-force Jacobian, every gradient against central differences (Float64), the Float32 training path
/// against Float64, the factor-out, and the identity start.
@Suite("Image flows (multi-scale RealNVP)")
struct ImageFlowTests {
    /// 1×4×4, one level (2 checkerboard, squeeze to 4×2×2, 2 channel-wise, factor out 2), 2 final couplings on 2×2×2.
    static let tiny = ImageFlowArchitecture(input: ImageShape(channels: 1, height: 4, width: 4), levels: 1,
                                            checkerboardCouplings: 2, channelCouplings: 2, finalCouplings: 2,
                                            channels: 3, resBlocks: 1)

    static func randomModel(_ a: ImageFlowArchitecture, seed: UInt64) throws -> RealNVP<Double> {
        var m = try RealNVP<Double>(configuration: .imageFlow(a, preprocessing: .none), seed: seed)
        let r = RandomStream(seed: seed, purpose: .auxiliary, substream: 78)
        for slot in m.network.layout.tensors {
            for e in 0..<slot.count { m.parameters[slot.offset + e] += 0.2 * r.normal(UInt64(slot.offset + e)) }
        }
        let D = a.input.count
        m.normalizer = Normalizer(mean: (0..<D).map { 0.05 * Double($0 % 5) }, std: (0..<D).map { 0.8 + 0.1 * Double($0 % 3) })
        return m
    }

    static func data(rows: Int, features: Int, seed: UInt32) -> Matrix<Double> {
        let r = RandomStream(seed: 9, purpose: .auxiliary, substream: seed)
        return Matrix(rows: rows, columns: features, values: (0..<(rows * features)).map { r.normal(UInt64($0)) })
    }

    @Test("realnvp-small on 1×28×28: the paper's levels, about 630k parameters, 0.89 GFLOP per training image")
    func realNVPSmallStructure() throws {
        let a = ImageFlowArchitecture.realNVPSmall(input: ImageShape(channels: 1, height: 28, width: 28))
        let shapes = a.steps.compactMap { step -> String? in
            switch step {
            case let .squeeze(_, s): "squeeze \(s) → \(s.squeezed)"
            case let .factorOut(_, s, f): "factor out \(f) of \(s)"
            default: nil
            }
        }
        #expect(shapes == ["squeeze 1×28×28 → 4×14×14", "factor out 2 of 4×14×14", "squeeze 2×14×14 → 8×7×7", "factor out 4 of 8×7×7"])
        #expect(a.couplingCount == 16)
        let network = try FlowNetwork<Float>(.imageFlow(a, preprocessing: .none))
        #expect(network.layout.parameterCount == a.parameterCount)
        #expect((600_000...660_000).contains(a.parameterCount), "\(a.parameterCount)")
        // 16 couplings with 2 residual blocks of 32 → 32 convolutions dominate: 3 × forward multiply-adds × 2 FLOP.
        #expect(a.forwardMultiplyAddsPerImage == 147_950_208)
        #expect(network.configuration.trainingFLOPsPerSample == 6 * 147_950_208)
        #expect(network.layout.slot(named: "levels.0.checkerboard.0.net.in.weight")?.shape == [32, 1, 3, 3])
        #expect(network.layout.slot(named: "levels.1.channel.2.net.out.weight")?.shape == [8, 32, 3, 3])
        #expect(network.layout.slot(named: "final.checkerboard.3.scale")?.shape == [4])
        #expect(network.layout.slot(named: "final.checkerboard.3.actnorm.log_scale")?.shape == [4])
    }

    @Test("a fresh image flow is the identity after the normaliser (zero last convolutions, unit scales, identity ActNorm)")
    func identityAtInitialisation() throws {
        let m = try RealNVP<Double>(configuration: .imageFlow(Self.tiny, preprocessing: .none), seed: 4)
        let x = Self.data(rows: 3, features: 16, seed: 1)
        let (z, logDet) = m.encode(x)
        // Squeezes permute: compare sorted rows.
        for i in 0..<3 { #expect(z.row(i).sorted() == x.row(i).sorted()) }
        for v in logDet { #expect(v == 0) }
    }

    @Test("decode(encode(x)) = x through every level, and n rows = n single rows")
    func exactInverse() throws {
        let m = try Self.randomModel(Self.tiny, seed: 5)
        let x = Self.data(rows: 5, features: 16, seed: 2)
        let (z, logDet) = m.encode(x)
        #expect(z.values != x.values)
        let back = m.decode(z)
        for e in x.values.indices { #expect(abs(back.values[e] - x.values[e]) <= 1e-12 * max(1, abs(x.values[e]))) }
        for i in 0..<5 {
            // The same to rounding (a pass of one row tiles its GEMMs differently from a pass of five).
            let (zi, li) = m.encode(x.gatherRows([i]))
            for j in 0..<16 { #expect(abs(zi[0, j] - z[i, j]) <= 1e-13 * max(1, abs(z[i, j]))) }
            #expect(abs(li[0] - logDet[i]) <= 1e-13 * max(1, abs(logDet[i])))
        }
    }

    @Test("the log-det of the whole flow = log|det J| of a brute-force central-difference Jacobian")
    func logDetAgainstJacobian() throws {
        let m = try Self.randomModel(Self.tiny, seed: 6)
        let D = 16
        let x = Self.data(rows: 2, features: D, seed: 3)
        let (_, logDet) = m.encode(x)
        for i in 0..<2 {
            var J = [[Double]](repeating: [Double](repeating: 0, count: D), count: D)
            for b in 0..<D {
                var up = x.row(i), down = up
                up[b] += 1e-6
                down[b] -= 1e-6
                let zu = m.encode(Matrix(rows: 1, columns: D, values: up)).z.values
                let zd = m.encode(Matrix(rows: 1, columns: D, values: down)).z.values
                for a in 0..<D { J[a][b] = (zu[a] - zd[a]) / 2e-6 }
            }
            let total = logDet[i]  // encode's log-det includes the normaliser's constant
            let bruteForce = GradientCheckTests.logAbsDeterminant(J)
            #expect(abs(bruteForce - total) <= 1e-7 * max(1, abs(total)), "row \(i): \(total) vs \(bruteForce)")
        }
    }

    @Test("every parameter's gradient of the NLL against central differences (Float64)")
    func parameterGradients() throws {
        var model = try Self.randomModel(Self.tiny, seed: 7)
        let x = Self.data(rows: 3, features: 16, seed: 4)
        #expect(Self.expectGradientsMatchCentralDifferences(&model, x) == Self.tiny.parameterCount)
    }

    @Test("the Float32 flow's loss and every tensor's gradient = the Float64 flow's on 1×28×28 (the convolutions' Float path: the direct kernels on AVX2 + FMA, 9 images across two 8-image chunks)")
    func float32MatchesFloat64() throws {
        // Float64 always runs im2col + GEMM (checked against central differences above); Float32 runs what training
        // runs. A defect in either Float path moves some tensor's gradient by far more than Float32 rounding.
        let a = ImageFlowArchitecture(input: ImageShape(channels: 1, height: 28, width: 28), levels: 2, checkerboardCouplings: 1,
                                      channelCouplings: 1, finalCouplings: 1, channels: 8, resBlocks: 1)
        var m64 = try RealNVP<Double>(configuration: .imageFlow(a, preprocessing: .none), seed: 11)
        let r = RandomStream(seed: 11, purpose: .auxiliary, substream: 79)
        for i in m64.parameters.indices { m64.parameters[i] += 0.05 * r.normal(UInt64(i)) }
        var m32 = try RealNVP<Float>(configuration: .imageFlow(a, preprocessing: .none), seed: 11)
        m32.parameters = m64.parameters.map(Float.init)
        let x64 = Self.data(rows: 9, features: 784, seed: 5)
        let x32 = Matrix<Float>(rows: 9, columns: 784, values: x64.values.map(Float.init))
        let o64 = m64.lossAndGradient(x64), o32 = m32.lossAndGradient(x32)
        let (l64, g64, l32, g32) = (o64.loss, o64.gradient, o32.loss, o32.gradient)
        #expect(abs(l32 - l64) <= 1e-5 * abs(l64), "loss \(l32) vs \(l64)")
        var compared = 0
        for slot in m64.network.layout.tensors where slot.isTrainable {
            var err = 0.0, norm = 0.0
            for i in slot.offset..<(slot.offset + slot.count) {
                err += (Double(g32[i]) - g64[i]) * (Double(g32[i]) - g64[i])
                norm += g64[i] * g64[i]
            }
            #expect(norm > 0, "\(slot.name) has no gradient")
            #expect(err.squareRoot() <= 1e-4 * norm.squareRoot(), "\(slot.name): relative error \(err.squareRoot() / norm.squareRoot())")
            compared += 1
        }
        #expect(compared == m64.network.layout.tensors.filter(\.isTrainable).count && compared > 40)
    }

    /// Checks every trainable parameter's gradient of ``RealNVP/lossAndGradient(_:context:l2:)`` on x (and c) against
    /// central differences of its loss (h = 10⁻⁶, relative 10⁻⁶), and that untrained tensors (running averages) get a
    /// zero gradient. Returns the number of parameters checked.
    static func expectGradientsMatchCentralDifferences(_ model: inout RealNVP<Double>, _ x: Matrix<Double>,
                                                        context c: Matrix<Double>? = nil) -> Int {
        let analytic = model.lossAndGradient(x, context: c).gradient
        let h = 1e-6
        var checked = 0
        for slot in model.network.layout.tensors {
            for e in 0..<slot.count {
                let i = slot.offset + e
                guard slot.isTrainable else { #expect(analytic[i] == 0, "\(slot.name)[\(e)] has a gradient"); continue }
                let saved = model.parameters[i]
                model.parameters[i] = saved + h
                let up = model.lossAndGradient(x, context: c).loss
                model.parameters[i] = saved - h
                let down = model.lossAndGradient(x, context: c).loss
                model.parameters[i] = saved
                let numeric = (up - down) / (2 * h)
                #expect(abs(numeric - analytic[i]) <= 1e-6 * max(1, abs(numeric)), "\(slot.name)[\(e)]: \(analytic[i]) vs \(numeric)")
                checked += 1
            }
        }
        return checked
    }

    @Test("factor-out: the channels factored out after level 0 are untouched by the final stage")
    func factorOutPassesThrough() throws {
        var m = try Self.randomModel(Self.tiny, seed: 8)
        let x = Self.data(rows: 4, features: 16, seed: 5)
        let z = m.encode(x).z
        // Another final stage: the active prefix (2×2×2 = 8 values) changes, the factored 8 values do not.
        for slot in m.network.layout.tensors where slot.name.hasPrefix("final.") {
            for e in 0..<slot.count { m.parameters[slot.offset + e] += 0.1 }
        }
        let z2 = m.encode(x).z
        for i in 0..<4 {
            #expect(Array(z.row(i)[8..<16]) == Array(z2.row(i)[8..<16]))
            #expect(Array(z.row(i)[0..<8]) != Array(z2.row(i)[0..<8]))
        }
    }

    @Test("invalid architectures are refused naming the flag", arguments: [
        (ImageFlowArchitecture(input: ImageShape(channels: 1, height: 28, width: 28), levels: 3), "--scales 3"),
        (ImageFlowArchitecture(input: ImageShape(channels: 1, height: 8, width: 8), channels: 0), "--channels 0"),
        (ImageFlowArchitecture(input: ImageShape(channels: 1, height: 8, width: 8), resBlocks: -1), "--res-blocks -1"),
        (ImageFlowArchitecture(input: ImageShape(channels: 1, height: 8, width: 8), levels: 0, finalCouplings: 0), "--final-couplings 0"),
    ])
    func invalid(a: ImageFlowArchitecture, flag: String) {
        #expect {
            try FlowConfiguration.imageFlow(a, preprocessing: .none).validate()
        } throws: { error in
            "\(error)".contains(flag)
        }
    }

    /// The tiny flow conditioned on K = 3 context values, with random parameters and a context normaliser.
    static func conditionalModel(seed: UInt64) throws -> RealNVP<Double> {
        var configuration = FlowConfiguration.imageFlow(tiny, preprocessing: .none)
        configuration.contextFeatures = 3
        var m = try RealNVP<Double>(configuration: configuration, seed: seed)
        let r = RandomStream(seed: seed, purpose: .auxiliary, substream: 79)
        for slot in m.network.layout.tensors {
            for e in 0..<slot.count { m.parameters[slot.offset + e] += 0.2 * r.normal(UInt64(slot.offset + e)) }
        }
        m.contextNormalizer = Normalizer(mean: [0.1, -0.2, 0.3], std: [0.9, 1.1, 1.3])
        return m
    }

    @Test("conditional p(x | c): every coupling's ResNet has a context weight; every gradient against central differences; exact inverse given c; c changes z")
    func conditionalFlow() throws {
        var model = try Self.conditionalModel(seed: 11)
        let contextSlots = model.network.layout.tensors.filter { $0.name.hasSuffix(".net.context.weight") }
        #expect(contextSlots.count == Self.tiny.couplingCount)
        #expect(contextSlots.allSatisfy { $0.shape == [3, 3] })  // [C, K]
        #expect(model.network.layout.parameterCount == Self.tiny.parameterCount + Self.tiny.couplingCount * 3 * 3)
        let x = Self.data(rows: 3, features: 16, seed: 6), c = Self.data(rows: 3, features: 3, seed: 7)
        #expect(Self.expectGradientsMatchCentralDifferences(&model, x, context: c) == model.network.layout.parameterCount)
        let (z, _) = model.encode(x, context: c)
        let back = model.decode(z, context: c)
        for e in x.values.indices { #expect(abs(back.values[e] - x.values[e]) <= 1e-12 * max(1, abs(x.values[e]))) }
        var other = c
        other.values[4] += 0.5  // row 1's context only
        let z2 = model.encode(x, context: other).z
        #expect(z2.row(0) == z.row(0) && z2.row(2) == z.row(2))
        #expect(z2.row(1) != z.row(1))
    }

    @Test("ActNorm's data-dependent initialisation on a conditional flow reads the rows' contexts: each ActNorm's output has zero mean and unit (sample) variance per channel")
    func conditionalActNormInitialisation() throws {
        let trained = try Self.conditionalModel(seed: 12)
        #expect(Self.tiny.actNorm)
        let network = try FlowNetwork<Double>(trained.network.configuration, contextNormalizer: trained.contextNormalizer)
        var p = RealNVP<Double>.initialParameters(layout: network.layout, seed: 3)
        // Random s/t weights (a fresh coupling is the identity, whatever its context).
        let r = RandomStream(seed: 5, purpose: .auxiliary, substream: 80)
        for slot in network.layout.tensors where !slot.name.contains("actnorm") {
            for e in 0..<slot.count { p[slot.offset + e] += 0.3 * r.normal(UInt64(slot.offset + e)) }
        }
        let n = 40, D = 16, K = 3
        let x = Self.data(rows: n, features: D, seed: 8), c = Self.data(rows: n, features: K, seed: 9)
        let rows = Matrix<Double>.concatenatingColumns(x, c)
        var initialised = p
        rows.values.withUnsafeBufferPointer { network.initializeActNorms($0.baseAddress!, rows: n, parameters: &initialised) }
        #expect(initialised != p)
        let ws = network.makeWorkspace(capacity: n)
        rows.values.withUnsafeBufferPointer { network.forward($0.baseAddress!, rows: n, parameters: initialised, workspace: ws) }
        var checked = 0
        for (t, f) in network.transforms.enumerated() {
            guard let norm = f.base as? ImageActNorm<Double> else { continue }
            let out = network.value(t + 1, in: ws), P = norm.shape.pixels
            for ch in 0..<norm.shape.channels {
                var values: [Double] = []
                for i in 0..<n { for q in 0..<P { values.append(out[i * D + ch * P + q]) } }
                let mean = values.reduce(0, +) / Double(values.count)
                // Bessel-corrected, as the initialisation computes it (its σ + 10⁻⁶ leaves 1 − variance ≈ 2·10⁻⁶/σ).
                let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count - 1)
                #expect(abs(mean) <= 1e-9 && abs(variance - 1) <= 1e-4, "\(norm.name) channel \(ch): mean \(mean), variance \(variance)")
                checked += 1
            }
        }
        #expect(checked > 0)
        // Other contexts, other statistics: the initialisation saw c.
        var otherInit = p
        let shifted = Matrix<Double>.concatenatingColumns(x, Matrix(rows: n, columns: K, values: c.values.map { $0 + 1 }))
        shifted.values.withUnsafeBufferPointer { network.initializeActNorms($0.baseAddress!, rows: n, parameters: &otherInit) }
        #expect(otherInit != initialised)
    }

    @Test("the configuration round-trips through JSON")
    func codable() throws {
        let c = FlowConfiguration.imageFlow(.realNVPPaper(input: ImageShape(channels: 1, height: 28, width: 28)),
                                            preprocessing: .dequantizeLogit(levels: 256, alpha: 0.05))
        let back = try JSONDecoder().decode(FlowConfiguration.self, from: JSONEncoder().encode(c))
        #expect(back == c)
        #expect(back.image?.resBlocks == 8 && back.image?.channels == 64)
    }
}
