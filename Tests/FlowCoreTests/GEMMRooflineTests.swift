import Testing
@testable import FlowCore

/// `bench --roofline` times exactly the step's matrix products: their flops must add up to the analytic count.
@Suite("GEMM roofline shapes")
struct GEMMRooflineTests {
    @Test("the products of a step on n rows sum to n × trainingFLOPsPerSample", arguments: [(256, 6, 256, 4), (128, 4, 32, 2), (7, 3, 16, 1)])
    func flopsMatchTheAnalyticCount(rows: Int, couplings: Int, hidden: Int, hiddenLayers: Int) {
        let model = FlowConfiguration(dim: 2, couplings: couplings, hidden: hidden, hiddenLayers: hiddenLayers)
        let mix = GEMMRoofline.shapes(model: model, rows: rows)
        let total = mix.reduce(0.0) { $0 + $1.shape.flops * Double($1.count) }
        #expect(total == Double(rows * model.trainingFLOPsPerSample))
        // Forward, weight gradient and input gradient of the H×H layers are all there, 2·K·(L−1) times each.
        let square = mix.filter { $0.shape.m * $0.shape.n * $0.shape.k == rows * hidden * hidden }
        #expect(square.count == (hiddenLayers > 1 ? 3 : 0))
        #expect(square.allSatisfy { $0.count == 2 * couplings * (hiddenLayers - 1) })
    }
}
