import FlowCore
import FlowDistributed
import FlowPlots
import Foundation

/// The SVG plots of a training run, computed on every rank (sharded) and written by rank 0:
/// - `loss.svg`: training and validation NLL per epoch; when the y axis is zoomed past the first epochs' large
///   losses, a full-range overview panel beside it shows every epoch
/// - images (an image shape, e.g. digits): `samples_grid.svg`, generated images with one row per temperature
///   τ ∈ {0, 0.25, 0.5, 0.7, 0.8, 1.0} (as Glow shows them) beside a block of real images of the same height,
///   one column per class
/// - otherwise `flow_panels.svg`: the seed's four panels, data X, latent f(X), sampled Z ~ N(0, I), generated
///   g(Z) (the first two features when D > 2); with D = 2 also `density.svg`, a smooth heat map of the learned
///   log-density on a ``densityGrid`` × ``densityGrid`` grid with the data overlaid as dark, light-outlined
///   dots; with D > 2 also `pairs.svg`, pairwise scatter of the first feature pairs, data vs samples
enum RunPlots {
    static let temperatures: [Double] = [0, 0.25, 0.5, 0.7, 0.8, 1.0]
    /// Cells per side of the density heat map: 128² = 16 384 log-densities = 64 whole chunks of the evaluator,
    /// sharded over ranks and workers like any batch (1.6 × the cost of the former 100²; the heat map's blur
    /// does the smoothing, so a much finer and dearer grid is not needed).
    static let densityGrid = 128
    /// At most this many classes get a column each in the real-image block; with more, the first images are shown.
    static let maxClassColumns = 16

    /// - Parameters:
    ///   - parameters: the model to draw (the best one when kept).
    ///   - labels: the training rows' labels, for a per-class view of real images.
    static func write(ctx: RunContext, trainer: DataParallelTrainer, parameters: AlignedBuffer<Float>, epoch: Int,
                      rawTrain: Matrix<Double>, labels: [Int]?, metrics: MetricsLog, run: RunDirectory, points: Int,
                      seed: UInt64) throws {
        let model = trainer.configuration.model
        let D = model.dim
        let p = parameters.base
        let curves = metrics.curves
        if ctx.isRoot {
            var series = [LineSeries(name: "train", xs: curves.epochs, ys: curves.train)]
            if curves.validation.contains(where: \.isFinite) {
                series.append(LineSeries(name: "validation", xs: curves.epochs, ys: curves.validation, dashed: true))
            }
            let unit = model.preprocessing.isDiscrete ? "NLL (nats, dequantised data)" : "NLL (nats, data units)"
            let all = curves.train + curves.validation
            let limits = lossLimits(all)
            // When the zoom cuts off points (typically the first epochs' large loss), say so and show every
            // epoch in a full-range overview beside the zoomed chart.
            let above = limits.map { l in all.filter { $0.isFinite && $0 > l.upperBound }.count } ?? 0
            let title = "Negative log-likelihood"
            let svg: String
            if let limits, above > 0 {
                let zoomTitle = "Zoomed in: \(above) point\(above == 1 ? "" : "s") above the top (all epochs on the right)"
                svg = Plots.zoomedLineChart(series: series, title: title, yLimits: limits, zoomTitle: zoomTitle, yLabel: unit)
            } else {
                svg = Plots.lineChart(series: series, title: title, yLabel: unit, yLimits: limits)
            }
            try write(svg, to: run.file("loss.svg"))
        }
        if let shape = model.imageShape {
            try imageGrids(ctx: ctx, trainer: trainer, parameters: p, epoch: epoch, shape: shape, rawTrain: rawTrain,
                           labels: labels, run: run, seed: seed)
            return
        }
        let n = min(points, trainer.trainRows)
        let (z, _) = try trainer.evaluator.encode(trainer.trainData.base, rows: n, parameters: p)
        let generated = dataSpace(trainer, try trainer.evaluator.sample(count: points, seed: seed &+ 1, temperature: 1, parameters: p))
        var sampledZ = [Float](repeating: 0, count: points * D)
        StandardNormal.sample(rows: points, dim: D, seed: seed &+ 1, temperature: 1, into: &sampledZ)
        var density: [Double] = []
        let grid = densityGrid
        var xRange = 0.0...1.0, yRange = 0.0...1.0
        if D == 2 && model.preprocessing == .none {
            xRange = PlotLimits.padded(rawTrain.column(0), margin: 0.1)
            yRange = PlotLimits.padded(rawTrain.column(1), margin: 0.1)
            let cx = Plots.gridCenters(xRange, count: grid), cy = Plots.gridCenters(yRange, count: grid)
            var cells = [Float]()
            cells.reserveCapacity(grid * grid * 2)
            for y in cy { for x in cx { cells.append(Float(x)); cells.append(Float(y)) } }
            let ld = try cells.withUnsafeBufferPointer {
                try trainer.evaluator.logDensity($0.baseAddress!, rows: grid * grid, parameters: p)
            }
            density = ld.map { $0 + trainer.network.constantLogDet }
        }
        guard ctx.isRoot else { return }
        let data = Points2D(rowMajor: Array(rawTrain.values[0..<(n * D)]), dimension: D, xColumn: 0, yColumn: 1)
        try write(Plots.fourPanel(data: data, latent: Points2D(rowMajor: z, dimension: D, xColumn: 0, yColumn: 1),
                                  sampled: Points2D(rowMajor: sampledZ, dimension: D, xColumn: 0, yColumn: 1),
                                  generated: Points2D(rowMajor: generated.values, dimension: D, xColumn: 0, yColumn: 1),
                                  title: "RealNVP, epoch \(epoch)"),
                  to: run.file("flow_panels.svg"))
        if !density.isEmpty {
            try write(Plots.heatMap(values: density, nx: grid, ny: grid, xRange: xRange, yRange: yRange,
                                    title: "Learned log-density, epoch \(epoch)", points: data,
                                    pointStyle: OverlayPointStyle(label: "training data (\(n) points)")),
                      to: run.file("density.svg"))
        }
        if D > 2 {
            let pairs = Plots.allFeaturePairs(dimension: D, limit: 6)
            // As many samples as data points, so that neither cloud hides the other.
            try write(Plots.pairwiseScatter(data: Array(rawTrain.values[0..<(n * D)]), samples: Array(generated.values[0..<(n * D)]), dimension: D,
                                            pairs: pairs, title: "Data vs samples, first feature pairs (epoch \(epoch))"),
                      to: run.file("pairs.svg"))
        }
    }

    /// Generated images per temperature beside real images per class.
    static func imageGrids(ctx: RunContext, trainer: DataParallelTrainer, parameters p: UnsafePointer<Float>, epoch: Int,
                           shape: [Int], rawTrain: Matrix<Double>, labels: [Int]?, run: RunDirectory, seed: UInt64) throws {
        let D = trainer.network.dim
        let columns = 10
        var generated: [[Double]] = []
        for (k, tau) in temperatures.enumerated() {
            let u = try trainer.evaluator.sample(count: columns, seed: seed &+ UInt64(100 + k), temperature: tau, parameters: p)
            let x = dataSpace(trainer, u)
            for i in 0..<columns { generated.append(Array(x.values[(i * D)..<((i + 1) * D)])) }
        }
        guard ctx.isRoot else { return }
        let levels: Double
        if case let .dequantizeLogit(l, _) = trainer.configuration.model.preprocessing { levels = Double(l) } else {
            levels = rawTrain.values.max() ?? 1
        }
        // Real images in a block as tall as the generated one (one row per temperature): one column per class
        // when labels are known, else the first rows.
        let rows = temperatures.count
        let real: ImageGridSpec
        if let labels, Set(labels).count <= maxClassColumns {
            real = ImageGridSpec.byClass(title: "Real (columns: class)", labels: labels, rows: rows, imageHeight: shape[0],
                                         imageWidth: shape[1], valueRange: 0...levels) { rawTrain.row($0).map { $0 + 0.5 } }
        } else {
            let images = (0..<min(rawTrain.rows, rows * columns)).map { rawTrain.row($0).map { $0 + 0.5 } }
            real = ImageGridSpec(title: "Real", images: images, imageHeight: shape[0], imageWidth: shape[1], rows: rows,
                                 columns: columns, valueRange: 0...levels)
        }
        let grids = [
            ImageGridSpec(title: "Generated (rows: temperature τ)", images: generated, imageHeight: shape[0], imageWidth: shape[1],
                          rows: rows, columns: columns,
                          rowLabels: temperatures.map { "τ = \($0)" }, valueRange: 0...levels),
            real,
        ]
        try write(Plots.imageGrids(grids, title: "RealNVP samples, epoch \(epoch)"), to: run.file("samples_grid.svg"))
    }

    /// The flow's input space `[n, D]` → data space: undo the preprocessing.
    static func dataSpace(_ trainer: DataParallelTrainer, _ x: [Float]) -> Matrix<Double> {
        let D = trainer.network.dim
        return trainer.configuration.model.preprocessing.dataSpace(Matrix(rows: x.count / D, columns: D, values: x))
    }

    /// A y range that shows the curve's shape after the first epochs rather than a huge first value
    /// (nil: the chart's own limits, e.g. when the finite values are too few or too far apart for a `Double` span).
    static func lossLimits(_ values: [Double]) -> ClosedRange<Double>? {
        let finite = values.filter(\.isFinite).sorted()
        guard finite.count >= 4 else { return nil }
        let lo = finite[0], hi = finite[min(finite.count - 1, Int(Double(finite.count) * 0.97))]
        let low = lo - 0.05 * (hi - lo), high = hi + 0.05 * (hi - lo)
        return hi > lo && low.isFinite && high.isFinite ? low...high : nil
    }

    static func write(_ svg: String, to path: String) throws {
        try AtomicFile.write(Array(svg.utf8), to: path)
    }
}
