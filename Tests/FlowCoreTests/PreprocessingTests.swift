import Foundation
import Testing
@testable import FlowCore

@Suite("Dequantisation, logit and bundled data")
struct PreprocessingTests {
    let pre = Preprocessing.dequantizeLogit(levels: 17, alpha: 0.05)

    @Test("the preprocessing's log-det equals log|det J| of a numerical Jacobian")
    func logDetAgainstJacobian() throws {
        let x = Matrix<Double>(rows: 3, columns: 4, values: [0.25, 16, 3, 8, 1.5, 12.25, 0.001, 16.9, 7, 7, 7, 7])
        let (_, logDet) = try pre.forward(x)
        for i in 0..<x.rows {
            // The transform is element-wise: the Jacobian is diagonal; compute every entry by central differences.
            var numeric = 0.0
            for j in 0..<4 {
                let h = 1e-6
                var up = Matrix(rows: 1, columns: 4, values: x.row(i)), down = up
                up.values[j] += h
                down.values[j] -= h
                numeric += log(abs((try pre.forward(up).z.values[j] - pre.forward(down).z.values[j]) / (2 * h)))
            }
            #expect(abs(numeric - logDet[i]) < 1e-6, "row \(i): \(logDet[i]) vs \(numeric)")
        }
    }

    @Test("decode(encode(x)) returns the dequantised x")
    func roundTrip() throws {
        var model = try RealNVP<Double>(configuration: FlowConfiguration(dim: 4, couplings: 4, hidden: 8, hiddenLayers: 2, maskScheme: .checkerboard,
                                                                        preprocessing: pre), seed: 3)
        let r = RandomStream(seed: 1, purpose: .auxiliary)
        for i in model.parameters.indices { model.parameters[i] += 0.1 * r.normal(UInt64(i)) }
        let discrete = Matrix<Double>(rows: 50, columns: 4, values: (0..<200).map { Double(Int(r.uniform(UInt64(10_000 + $0)) * 17)) })
        let noise = Preprocessing.noise(seed: 9, substream: 0, rows: 50, dim: 4)
        let dequantised = Matrix(rows: 50, columns: 4, values: zip(discrete.values, noise).map { $0 + $1 })
        let back = model.decode(model.encode(dequantised).z)
        for (a, b) in zip(back.values, dequantised.values) { #expect(abs(a - b) < 1e-9) }
        #expect(back.values != discrete.values)  // it returns x + u, not the integers
    }

    @Test("bits/dim of an identity flow on dequantised data equals the closed form")
    func closedForm() throws {
        // All-zero parameters: s = tanh(0) = 0 and t = 0, so every coupling is the identity; identity normaliser.
        let config = FlowConfiguration(dim: 3, couplings: 2, hidden: 4, hiddenLayers: 1, preprocessing: pre)
        let network = try FlowNetwork<Double>(config)
        let model = RealNVP(network: network, parameters: Array(repeating: 0, count: network.layout.storageCount),
                            normalizer: .identity(dim: 3))
        let x = Matrix<Double>(rows: 2, columns: 3, values: [0.5, 8.25, 16.5, 3.75, 3.75, 11.0])
        let logp = model.logProb(x)
        for i in 0..<2 {
            var expected = 0.0
            for j in 0..<3 {
                let s = 0.05 + 0.9 * x[i, j] / 17
                let z = log(s / (1 - s))
                // log N(z; 0, 1) + log|dz/dx| with dz/dx = 0.9 / (17 · s (1 − s))
                expected += -0.5 * z * z - 0.5 * log(2 * Double.pi) + log(0.9 / (17 * s * (1 - s)))
            }
            #expect(abs(logp[i] - expected) < 1e-12, "row \(i): \(logp[i]) vs \(expected)")
            let bitsPerDim = -logp[i] / (3 * log(2.0))
            #expect(abs(bitsPerDim - (-expected / (3 * log(2.0)))) < 1e-12)
        }
    }

    @Test("values outside 0…levels−1 are refused with the row and column")
    func outOfRange() {
        let x = Matrix<Double>(rows: 2, columns: 2, values: [0, 1, 17, 2])
        #expect(throws: FlowConfigurationError.self) { _ = try pre.forward(x) }
        do { _ = try pre.forward(x) } catch {
            #expect("\(error)" == "invalid --levels 17: row 2, column 1 holds 17.0, outside 0…16; discrete data must be integers in 0…levels−1")
        }
    }

    @Test("bundled data sets: shapes, value ranges, labels kept apart", arguments: BundledDataset.allCases)
    func bundled(set: BundledDataset) throws {
        let c = try set.load()
        #expect(c.classNames == set.classNames)
        switch set {
        case .digits:
            #expect(c.features.rows == 1797 && c.features.columns == 64)
            let pixels = c.features.values.allSatisfy { $0 >= 0 && $0 <= 16 && $0 == $0.rounded() }
            #expect(pixels)
            #expect(Set(c.labels) == Set(0...9))
            #expect(c.imageShape == [8, 8] && c.levels == 17)
            // The first image of the UCI file is a 0 whose first row is 0,0,5,13,9,1,0,0.
            #expect(Array(c.features.values[0..<8]) == [0, 0, 5, 13, 9, 1, 0, 0])
            #expect(c.labels[0] == 0)
        case .wine:
            #expect(c.features.rows == 178 && c.features.columns == 13)
            #expect(Set(c.labels) == Set(0...2))
            #expect(c.features[0, 0] == 14.23 && c.features[0, 12] == 1065)  // the label is not a feature
        case .breastCancer:
            #expect(c.features.rows == 569 && c.features.columns == 30)
            #expect(Set(c.labels) == Set(0...1))
            #expect(c.features[0, 0] == 17.99 && c.features[0, 29] == 0.1189)
        case .fashionMNIST:
            // Debian's dataset-fashion-mnist (installed by the setup scripts and CI).
            #expect(c.features.rows == 60_000 && c.features.columns == 784)
            #expect(c.imageShape == [28, 28] && c.levels == 256)
            #expect(Set(c.labels) == Set(0...9) && c.classNames.count == 10)
            #expect(c.labels[0] == 9)  // the first training image is an ankle boot
            #expect(c.features.values.min() == 0 && c.features.values.max() == 255)
            let test = try #require(try set.loadTest())
            #expect(test.features.rows == 10_000 && test.labels[0] == 9)
        }
        let finite = c.features.values.allSatisfy { $0.isFinite }
        #expect(finite)
        #expect(c.labels.count == c.features.rows)
    }

    @Test("Gaussian baselines: the full-covariance fit beats the diagonal one on correlated data and matches a closed form")
    func gaussianBaselines() throws {
        let r = RandomStream(seed: 4, purpose: .auxiliary)
        // x = (a, a + 0.1·b): strongly correlated.
        let n = 2000
        var v: [Double] = []
        for i in 0..<n { let a = r.normal(UInt64(2 * i)), b = r.normal(UInt64(2 * i + 1)); v += [a, a + 0.1 * b] }
        let x = Matrix(rows: n, columns: 2, values: v)
        let full = try GaussianBaseline(fitting: x, diagonal: false), diag = try GaussianBaseline(fitting: x, diagonal: true)
        let nllFull = -full.logDensity(x).reduce(0, +) / Double(n), nllDiag = -diag.logDensity(x).reduce(0, +) / Double(n)
        #expect(nllFull < nllDiag - 1)
        // In-sample, the ML Gaussian's mean NLL is ½·log|2πeΣ|.
        let L = full.cholesky
        let logDet = 2 * (log(L[0]) + log(L[3]))
        #expect(abs(nllFull - 0.5 * (2 * log(2 * Double.pi) + 2 + logDet)) < 1e-9)
        #expect(throws: NormalizerError.self) { _ = try GaussianBaseline(fitting: Matrix(rows: 3, columns: 2, values: [1, 2, 1, 3, 1, 4]), diagonal: true) }
    }
}
