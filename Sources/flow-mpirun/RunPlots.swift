import FlowCore
import FlowDistributed
import FlowPlots
import Foundation

/// The SVG plots of a training run, computed on every rank (sharded) and written by rank 0:
/// - `flow_panels.svg`: the seed's four panels: data X, latent f(X), sampled Z ~ N(0, I), generated g(Z)
///   (the first two features when D > 2)
/// - `loss.svg`: training and validation NLL per epoch
/// - `density.svg` (D = 2): a heat map of the learned log-density log p(x) with the data overlaid
enum RunPlots {
    static func write(ctx: RunContext, trainer: DataParallelTrainer, rawTrain: Matrix<Double>, metrics: MetricsLog,
                      run: RunDirectory, points: Int, seed: UInt64) throws {
        let D = trainer.network.dim
        let p = trainer.parameters.base
        let n = min(points, trainer.trainRows)
        let u = trainer.trainData.base
        let (z, _) = try trainer.evaluator.encode(u, rows: n, parameters: p)
        let generatedU = try trainer.evaluator.sample(count: points, seed: seed &+ 1, temperature: 1, parameters: p)
        var sampledZ = [Float](repeating: 0, count: points * D)
        StandardNormal.sample(rows: points, dim: D, seed: seed &+ 1, temperature: 1, into: &sampledZ)
        let generated = trainer.normalizer.denormalize(Matrix(rows: points, columns: D, values: generatedU))

        var density: [Double] = []
        let grid = 100
        var xRange = 0.0...1.0, yRange = 0.0...1.0
        if D == 2 {
            let xs = rawTrain.column(0), ys = rawTrain.column(1)
            xRange = PlotLimits.padded(xs, margin: 0.1)
            yRange = PlotLimits.padded(ys, margin: 0.1)
            let cx = Plots.gridCenters(xRange, count: grid), cy = Plots.gridCenters(yRange, count: grid)
            var cells = [Float]()
            cells.reserveCapacity(grid * grid * 2)
            for y in cy { for x in cx { cells.append(Float(x)); cells.append(Float(y)) } }
            let norm = trainer.normalizer.normalize(Matrix(rows: grid * grid, columns: 2, values: cells))
            let ld = try norm.values.withUnsafeBufferPointer {
                try trainer.evaluator.logDensity($0.baseAddress!, rows: grid * grid, parameters: p)
            }
            density = ld.map { $0 + trainer.normalizer.logDetJacobian }
        }
        guard ctx.isRoot else { return }
        let data = Points2D(rowMajor: Array(rawTrain.values[0..<(n * D)]), dimension: D, xColumn: 0, yColumn: 1)
        let title = "RealNVP, epoch \(trainer.epoch)"
        try write(Plots.fourPanel(data: data, latent: Points2D(rowMajor: z, dimension: D, xColumn: 0, yColumn: 1),
                                  sampled: Points2D(rowMajor: sampledZ, dimension: D, xColumn: 0, yColumn: 1),
                                  generated: Points2D(rowMajor: generated.values, dimension: D, xColumn: 0, yColumn: 1),
                                  title: title),
                  to: run.file("flow_panels.svg"))
        let curves = metrics.curves
        var series = [LineSeries(name: "train", xs: curves.epochs, ys: curves.train)]
        if curves.validation.contains(where: \.isFinite) {
            series.append(LineSeries(name: "validation", xs: curves.epochs, ys: curves.validation, dashed: true))
        }
        try write(Plots.lineChart(series: series,
                                  title: "Negative log-likelihood", yLimits: lossLimits(curves.train + curves.validation)),
                  to: run.file("loss.svg"))
        if D == 2 {
            try write(Plots.heatMap(values: density, nx: grid, ny: grid, xRange: xRange, yRange: yRange,
                                    title: "Learned log-density, epoch \(trainer.epoch)", points: data, pointOpacity: 0.25),
                      to: run.file("density.svg"))
        }
    }

    /// A y range that shows the curve's shape after the first epochs rather than a huge first value.
    static func lossLimits(_ values: [Double]) -> ClosedRange<Double>? {
        let finite = values.filter(\.isFinite).sorted()
        guard finite.count >= 4 else { return nil }
        let lo = finite[0], hi = finite[min(finite.count - 1, Int(Double(finite.count) * 0.97))]
        return hi > lo ? (lo - 0.05 * (hi - lo))...(hi + 0.05 * (hi - lo)) : nil
    }

    static func write(_ svg: String, to path: String) throws {
        try AtomicFile.write(Array(svg.utf8), to: path)
    }
}
