import Foundation
import Testing

@testable import FlowCore

/// A conditional flow p(x | c): for each fixed c an exact bijection with a normalised density; the context gets
/// its own normaliser, survives a checkpoint, and changes nothing about an unconditional model's bytes.
@Suite("Conditional flows p(x | c)")
struct ConditionalFlowTests {
    static let configuration = FlowConfiguration(dim: 2, couplings: 4, hidden: 16, hiddenLayers: 2, contextFeatures: 3)

    /// A conditional model with random parameters and non-trivial normalisers; `outputScale` scales the last layer
    /// of every s and t network (small: a flow near the normalisers' affine map, its density within a few std).
    static func model<S: FlowScalar>(_ type: S.Type = S.self, seed: UInt64 = 4, outputScale: Double = 1) throws -> RealNVP<S> {
        var m = try RealNVP<S>(configuration: configuration, seed: seed)
        let r = RandomStream(seed: seed, purpose: .auxiliary, substream: 9)
        for slot in m.network.layout.tensors {
            let last = slot.name.hasSuffix(".2.weight") || slot.name.hasSuffix(".2.bias")
            for e in slot.offset..<(slot.offset + slot.count) {
                m.parameters[e] = S((Double(m.parameters[e]) + 0.2 * r.normal(UInt64(e))) * (last ? outputScale : 1))
            }
        }
        m.normalizer = Normalizer(mean: [0.5, -0.25], std: [0.8, 1.5])
        m.contextNormalizer = Normalizer(mean: [1, 0, -2], std: [2, 0.5, 1])
        return m
    }

    static func matrix(rows: Int, columns: Int, seed: UInt32) -> Matrix<Double> {
        let r = RandomStream(seed: 21, purpose: .auxiliary, substream: seed)
        return Matrix(rows: rows, columns: columns, values: (0..<(rows * columns)).map { r.normal(UInt64($0)) })
    }

    @Test("decode(encode(x; c); c) = x in Float64; one broadcast context row = that row repeated")
    func exactInverseGivenContext() throws {
        let m = try Self.model(Double.self)
        let x = Self.matrix(rows: 9, columns: 2, seed: 1), c = Self.matrix(rows: 9, columns: 3, seed: 2)
        let (z, _) = m.encode(x, context: c)
        let back = m.decode(z, context: c)
        for e in x.values.indices { #expect(abs(back.values[e] - x.values[e]) <= 1e-12 * max(1, abs(x.values[e]))) }
        // Another context decodes the same z elsewhere.
        let other = Matrix(rows: 9, columns: 3, values: c.values.map { $0 + 1 })
        #expect(m.decode(z, context: other).values != back.values)
        // Broadcast: one context row for every row.
        let row = Matrix(rows: 1, columns: 3, values: c.row(4))
        let repeated = Matrix(rows: 9, columns: 3, values: (0..<9).flatMap { _ in c.row(4) })
        #expect(m.decode(z, context: row).values == m.decode(z, context: repeated).values)
        #expect(m.logProb(x, context: row) == m.logProb(x, context: repeated))
    }

    @Test("for fixed c, p(x | c) integrates to 1 over the plane (midpoint rule), for three contexts")
    func densityIsNormalisedForEachContext() throws {
        let m = try Self.model(Double.self, outputScale: 0.25)
        // The flow's density decays like a Gaussian's beyond the data: [−12, 12]² holds all but a negligible mass.
        let n = 160, lo = -12.0, hi = 12.0, h = (hi - lo) / Double(n)
        var cells = [Double]()
        cells.reserveCapacity(n * n * 2)
        for i in 0..<n { for j in 0..<n { cells.append(lo + (Double(i) + 0.5) * h); cells.append(lo + (Double(j) + 0.5) * h) } }
        let grid = Matrix(rows: n * n, columns: 2, values: cells)
        var masses: [Double] = []
        for c in [[0.0, 0, 0], [3, -1, 2], [-2, 1.5, -4]] {
            let lp = m.logProb(grid, context: Matrix(rows: 1, columns: 3, values: c))
            let mass = lp.reduce(0) { $0 + exp($1) } * h * h
            masses.append(mass)
            #expect(abs(mass - 1) < 1e-3, "context \(c): ∫ p(x | c) dx = \(mass)")
        }
        // The three densities differ (the context matters), yet each is normalised.
        let at = Matrix(rows: 1, columns: 2, values: [0.3, -0.4])
        let values = [[0.0, 0, 0], [3, -1, 2]].map { m.logProb(at, context: Matrix(rows: 1, columns: 3, values: $0))[0] }
        #expect(abs(values[0] - values[1]) > 1e-3)
    }

    @Test("the context normaliser: standardising c by hand with an identity normaliser gives the same log p(x | c)")
    func contextNormaliser() throws {
        let m = try Self.model(Double.self)
        let x = Self.matrix(rows: 5, columns: 2, seed: 3), c = Self.matrix(rows: 5, columns: 3, seed: 4)
        var plain = m
        plain.contextNormalizer = .identity(dim: 3)
        let standardised = m.contextNormalizer.normalize(c)
        let a = m.logProb(x, context: c), b = plain.logProb(x, context: standardised)
        for i in 0..<5 { #expect(abs(a[i] - b[i]) <= 1e-13 * max(1, abs(a[i]))) }
        // It adds nothing to the log-det: the density is over x only.
        #expect(m.network.constantLogDet == plain.network.constantLogDet)
    }

    @Test("a checkpoint keeps the context normaliser and K; the first weights are [H, D + K]; another K is refused")
    func checkpointRoundTrip() throws {
        try withTemporaryDirectory { dir in
            let m = try Self.model(Float.self)
            let path = "\(dir)/model.safetensors"
            try Checkpoint(model: m).write(to: path)
            let loaded = try Checkpoint.load(path: path)
            #expect(loaded.model.configuration == Self.configuration)
            #expect(loaded.model.contextNormalizer == m.contextNormalizer)
            #expect(loaded.model.parameters == m.parameters)
            let file = try SafeTensorsFile(path: path)
            #expect(try file.info("couplings.0.s.0.weight").shape == [16, 5])
            #expect(try file.info("context_normalizer.std").shape == [3])
            let x = Matrix<Float>(rows: 2, columns: 2, values: [0.1, 0.2, -1, 3])
            let c = Matrix<Float>(rows: 2, columns: 3, values: [1, 2, 3, -1, 0, 0.5])
            #expect(loaded.model.logProb(x, context: c) == m.logProb(x, context: c))
            var other = Self.configuration
            other.contextFeatures = 2
            let error = captureFlowIOError { try Checkpoint.load(path: path, expecting: other) }
            #expect(error != nil)
        }
    }

    @Test("configuration JSON: an unconditional model's bytes carry no context keys; a conditional one round-trips")
    func configurationJSON() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let plain = String(decoding: try encoder.encode(FlowConfiguration.seed()), as: UTF8.self)
        #expect(!plain.contains("context"))
        var classes = FlowConfiguration.seed()
        classes.contextFeatures = 2
        classes.contextClasses = 2
        let decoded = try JSONDecoder().decode(FlowConfiguration.self, from: encoder.encode(classes))
        #expect(decoded == classes)
        var wrong = classes
        wrong.contextClasses = 3
        #expect(throws: FlowConfigurationError.self) { try wrong.validate() }
        wrong.contextClasses = 1
        wrong.contextFeatures = 1
        #expect(throws: FlowConfigurationError.self) { try wrong.validate() }
        var negative = FlowConfiguration.seed()
        negative.contextFeatures = -1
        #expect(throws: FlowConfigurationError.self) { try negative.validate() }
        // The seed model's FLOP count is unchanged; a context adds K·H multiply-adds to every first layer.
        #expect(FlowConfiguration.seed().trainingFLOPsPerSample == 14_227_456)
        #expect(classes.trainingFLOPsPerSample - FlowConfiguration.seed().trainingFLOPsPerSample == 2 * (2 * 6 * 2 * 256 * 3 - 2 * 2 * 256))
    }
}
