import Foundation
import Testing
@testable import FlowCore

/// Batch normalisation in training mode (``ImageBatchNorm``'s passes with the statistics of the whole batch, through a
/// ``BatchStatisticsReducer``), Float64: the normalised output, PyTorch's running-average rule, every gradient of a
/// batch loss against central differences (the statistics move with every row), passes of a split batch against one
/// pass, and a whole flow with batch normalisation. Its evaluation mode is in the shared transform tests.
@Suite("Batch normalisation (training mode, Float64)")
struct BatchNormTests {
    static let shape = ImageShape(channels: 3, height: 2, width: 3)
    /// Rows of D = 20 > C·H·W = 18: two values pass through.
    static let features = 20

    struct Built {
        let norm: ImageBatchNorm<Double>
        let layout: ParameterLayout
        var parameters: [Double]
        let workspaces: [FlowWorkspace<Double>]

        init(passes: Int = 1, capacity: Int = 8) {
            var p = ParameterLayout.Builder(), w = WorkspaceLayout.Builder()
            p.beginTransform()
            norm = ImageBatchNorm(name: "b", shape: BatchNormTests.shape, features: BatchNormTests.features, parameters: &p, workspace: &w)
            layout = p.layout()
            let wl = w.layout()
            workspaces = (0..<passes).map { _ in FlowWorkspace(layout: wl, capacity: capacity) }
            var values = RealNVP<Double>.initialParameters(layout: layout, seed: 1)
            let r = RandomStream(seed: 5, purpose: .auxiliary, substream: 3)
            for e in values.indices { values[e] += 0.4 * r.normal(UInt64(e)) }
            parameters = values
        }

        /// The training forward of rows `split` (pass sizes) of x: y and per-row log-dets, the forward totals.
        func forward(_ x: [Double], split: [Int]) -> (y: [Double], logDet: [Double], totals: [Double]) {
            let D = BatchNormTests.features, stats = LocalBatchStatistics(slots: split.count, width: norm.statisticsCount)
            var y = [Double](repeating: 0, count: x.count), ld = [Double](repeating: 0, count: split.reduce(0, +))
            var start = 0
            for (q, n) in split.enumerated() {
                norm.forwardStatistics(Array(x[(start * D)...]), rows: n, into: stats.partials(slot: q))
                start += n
            }
            let totals = Array(UnsafeBufferPointer(start: stats.reduce(worker: 0, count: norm.statisticsCount, record: 0), count: norm.statisticsCount))
            start = 0
            for (q, n) in split.enumerated() {
                var yq = [Double](repeating: 0, count: n * D), lq = [Double](repeating: 0, count: n)
                parameters.withUnsafeBufferPointer { p in
                    norm.forward(Array(x[(start * D)...]), rows: n, batchTotals: totals, parameters: p.baseAddress!,
                                 workspace: workspaces[q], output: &yq, logDet: &lq)
                }
                for e in 0..<(n * D) { y[start * D + e] = yq[e] }
                for i in 0..<n { ld[start + i] = lq[i] }
                start += n
            }
            return (y, ld, totals)
        }

        /// L = Σ w ⊙ y + λ·Σ log-det over the batch.
        func loss(_ x: [Double], weights w: [Double], lambda: Double, split: [Int]) -> Double {
            let (y, ld, _) = forward(x, split: split)
            return zip(w, y).reduce(0) { $0 + $1.0 * $1.1 } + lambda * ld.reduce(0, +)
        }

        /// The training backward of L: the parameter gradient summed over the passes, and dL/dx.
        func gradients(_ x: [Double], weights w: [Double], lambda: Double, split: [Int]) -> (parameters: [Double], input: [Double]) {
            let D = BatchNormTests.features, count = norm.statisticsCount
            _ = forward(x, split: split)
            let stats = LocalBatchStatistics(slots: split.count, width: count)
            var start = 0
            for (q, n) in split.enumerated() {
                norm.backwardStatistics(Array(w[(start * D)...]), input: Array(x[(start * D)...]), rows: n, workspace: workspaces[q],
                                        into: stats.partials(slot: q))
                start += n
            }
            let totals = Array(UnsafeBufferPointer(start: stats.reduce(worker: 0, count: count, record: nil), count: count))
            var g = [Double](repeating: 0, count: parameters.count), dx = [Double](repeating: 0, count: x.count)
            start = 0
            for (q, n) in split.enumerated() {
                var gq = [Double](repeating: .nan, count: parameters.count), dq = [Double](repeating: 0, count: n * D)
                parameters.withUnsafeBufferPointer { p in
                    norm.backward(Array(w[(start * D)...]), dLogDet: lambda, input: Array(x[(start * D)...]), rows: n, batchTotals: totals,
                                  parameters: p.baseAddress!, gradient: &gq, accumulate: false, workspace: workspaces[q], dx: &dq)
                }
                for e in g.indices { g[e] += gq[e] }
                for e in 0..<(n * D) { dx[start * D + e] = dq[e] }
                start += n
            }
            return (g, dx)
        }
    }

    static func data(rows: Int, seed: UInt32, shift: Double = 0) -> [Double] {
        let r = RandomStream(seed: 12, purpose: .auxiliary, substream: seed)
        return (0..<(rows * features)).map { 1.5 * r.normal(UInt64($0)) + shift + 0.3 * Double($0 % 7) }
    }

    @Test("the batch's output has mean β_c and standard deviation γ_c·σ/√(σ² + ε) per channel; the log-det is H·W·Σ(log γ − ½ log(σ² + ε)); the pass-through values are copied; the running averages follow PyTorch's rule")
    func normalisedOutput() throws {
        var t = Built()
        let n = 7, D = Self.features, P = Self.shape.pixels, C = Self.shape.channels
        let x = Self.data(rows: n, seed: 1, shift: 2)
        let (y, ld, totals) = t.forward(x, split: [n])
        var expectedLogDet = 0.0
        for c in 0..<C {
            let xs = (0..<n).flatMap { i in (0..<P).map { x[i * D + c * P + $0] } }
            let ys = (0..<n).flatMap { i in (0..<P).map { y[i * D + c * P + $0] } }
            let mean = xs.reduce(0, +) / Double(xs.count)
            let variance = xs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(xs.count)
            let gamma = exp(t.parameters[t.norm.logScale + c]), beta = t.parameters[t.norm.bias + c]
            let yMean = ys.reduce(0, +) / Double(ys.count)
            let ySD = (ys.reduce(0) { $0 + ($1 - yMean) * ($1 - yMean) } / Double(ys.count)).squareRoot()
            #expect(abs(yMean - beta) < 1e-12, "channel \(c): mean \(yMean) vs β \(beta)")
            #expect(abs(ySD - gamma * (variance / (variance + 1e-5)).squareRoot()) < 1e-12, "channel \(c): sd \(ySD)")
            expectedLogDet += Double(P) * (log(gamma) - 0.5 * log(variance + 1e-5))
        }
        for i in 0..<n {
            #expect(abs(ld[i] - expectedLogDet) < 1e-12)
            #expect(y[i * D + 18] == x[i * D + 18] && y[i * D + 19] == x[i * D + 19])
        }
        // Running averages: μ̄ ← 0.9·μ̄ + 0.1·μ, σ̄² ← 0.9·σ̄² + 0.1·σ²·N/(N − 1).
        let before = t.parameters
        t.parameters.withUnsafeMutableBufferPointer { t.norm.updateRunningAverages(forwardTotals: totals, parameters: $0.baseAddress!) }
        for c in 0..<C {
            let xs = (0..<n).flatMap { i in (0..<P).map { x[i * D + c * P + $0] } }
            let N = Double(xs.count), mean = xs.reduce(0, +) / N
            let unbiased = xs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (N - 1)
            let rm = t.norm.runningMean + c, rv = t.norm.runningVariance + c
            #expect(abs(t.parameters[rm] - (0.9 * before[rm] + 0.1 * mean)) < 1e-12)
            #expect(abs(t.parameters[rv] - (0.9 * before[rv] + 0.1 * unbiased)) < 1e-12)
        }
        #expect(t.layout.parameterCount == 2 * C)
        #expect(t.layout.tensors.filter { !$0.isTrainable }.map(\.name) == ["b.running_mean", "b.running_var"])
    }

    @Test("training-mode gradients of Σ w⊙y + λ·Σ log-det against central differences: every x (through the batch's mean and variance) and the trainable parameters; none for the running averages", arguments: [[5], [2, 3], [1, 1, 3]])
    func gradientsAgainstFiniteDifferences(split: [Int]) {
        var t = Built(passes: split.count)
        let n = split.reduce(0, +)
        let x = Self.data(rows: n, seed: 2, shift: -1)
        let w = Self.data(rows: n, seed: 3)
        let lambda = -0.7, h = 1e-6
        let (g, dx) = t.gradients(x, weights: w, lambda: lambda, split: split)
        for e in x.indices {
            var up = x, down = x
            up[e] += h
            down[e] -= h
            let numeric = (t.loss(up, weights: w, lambda: lambda, split: split) - t.loss(down, weights: w, lambda: lambda, split: split)) / (2 * h)
            #expect(abs(numeric - dx[e]) <= 1e-6 * max(1, abs(numeric)), "split \(split) dL/dx[\(e)]: \(dx[e]) vs \(numeric)")
        }
        for slot in t.layout.tensors {
            for c in 0..<slot.count {
                let i = slot.offset + c
                guard slot.isTrainable else { #expect(g[i] == 0, "\(slot.name)[\(c)] has a gradient in training"); continue }
                let saved = t.parameters[i]
                t.parameters[i] = saved + h
                let up = t.loss(x, weights: w, lambda: lambda, split: split)
                t.parameters[i] = saved - h
                let down = t.loss(x, weights: w, lambda: lambda, split: split)
                t.parameters[i] = saved
                let numeric = (up - down) / (2 * h)
                #expect(abs(numeric - g[i]) <= 1e-6 * max(1, abs(numeric)), "split \(split) d/d \(slot.name)[\(c)]: \(g[i]) vs \(numeric)")
            }
        }
    }

    @Test("a batch split into passes gives what one pass gives: y, log-det, dL/dx and the summed parameter gradient")
    func passesMatchOnePass() {
        let t1 = Built(passes: 1), t3 = Built(passes: 3)
        let x = Self.data(rows: 6, seed: 4), w = Self.data(rows: 6, seed: 5)
        let one = t1.forward(x, split: [6]), three = t3.forward(x, split: [2, 1, 3])
        for e in x.indices { #expect(abs(one.y[e] - three.y[e]) < 1e-12) }
        for i in 0..<6 { #expect(abs(one.logDet[i] - three.logDet[i]) < 1e-12) }
        let g1 = t1.gradients(x, weights: w, lambda: 0.4, split: [6]), g3 = t3.gradients(x, weights: w, lambda: 0.4, split: [2, 1, 3])
        for e in x.indices { #expect(abs(g1.input[e] - g3.input[e]) < 1e-12) }
        for slot in t1.layout.tensors {
            for e in slot.offset..<(slot.offset + slot.count) {
                #expect(abs(g1.parameters[e] - g3.parameters[e]) < 1e-11 * max(1, abs(g1.parameters[e])), "\(slot.name)")
            }
        }
    }

    /// `ImageFlowTests.tiny` with batch normalisation instead of ActNorm.
    static let flow: ImageFlowArchitecture = {
        var a = ImageFlowTests.tiny
        a.actNorm = false
        a.batchNorm = true
        return a
    }()

    @Test("a flow with batch normalisation: the training loss's gradient (batch statistics) against central differences for every trainable parameter, zero for the running averages; in evaluation (running averages) a row's density does not depend on its batch and decode inverts encode")
    func flowWithBatchNorm() throws {
        var model = try ImageFlowTests.randomModel(Self.flow, seed: 11)
        #expect(model.network.hasBatchStatistics)
        #expect(model.network.batchStatisticsTransformCount == Self.flow.couplingCount)
        let x = ImageFlowTests.data(rows: 4, features: 16, seed: 6)
        #expect(ImageFlowTests.expectGradientsMatchCentralDifferences(&model, x) == Self.flow.parameterCount)
        // The training loss depends on the batch; evaluation (running averages) does not: a row's log-density is the
        // same alone and among others, decode inverts encode.
        let all = model.logProb(x)
        let first = model.logProb(Matrix(rows: 1, columns: 16, values: Array(x.values[0..<16])))
        #expect(all[0] == first[0])
        let z = model.encode(x).z
        let back = model.decode(z)
        for e in x.values.indices { #expect(abs(back.values[e] - x.values[e]) < 1e-10) }
        // Training-mode and evaluation-mode NLLs differ (the batch's statistics are not the running averages).
        let trainingNLL = model.lossAndGradient(x).nll
        let evaluationNLL = -all.reduce(0, +) / 4
        #expect(abs(trainingNLL - evaluationNLL) > 1e-3)
    }

    @Test("batch_norm round-trips through the configuration's JSON; files without it decode as ActNorm models; both norms at once are refused")
    func configuration() throws {
        let data = try JSONEncoder().encode(FlowConfiguration.imageFlow(Self.flow, preprocessing: .none))
        let back = try JSONDecoder().decode(FlowConfiguration.self, from: data)
        #expect(back.image == Self.flow)
        let plain = String(decoding: try JSONEncoder().encode(ImageFlowTests.tiny), as: UTF8.self)
        #expect(!plain.contains("batch_norm"))
        var both = Self.flow
        both.actNorm = true
        #expect(throws: FlowConfigurationError.self) { try both.validate() }
    }
}
