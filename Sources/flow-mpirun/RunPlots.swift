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
/// - a conditional flow p(x | c) draws its samples with the training rows' contexts (row i's sample with training
///   row i's c), so that they follow the data's marginal; class-conditional: `samples_by_class.svg`, data and
///   samples with one colour per class (the first two features), the density (D = 2) is the mixture
///   Σ_c π_c p(x | c) with the training split's class frequencies π_c, and image grids show one row per class
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
    ///   - classNames: a class-conditional run's class names (legends, grid rows).
    static func write(ctx: RunContext, trainer: DataParallelTrainer, parameters: AlignedBuffer<Float>, epoch: Int,
                      rawTrain: Matrix<Double>, labels: [Int]?, classNames: [String]? = nil, metrics: MetricsLog,
                      run: RunDirectory, points: Int, seed: UInt64) throws {
        let model = trainer.configuration.model
        let D = model.dim
        let p = parameters.base
        let curves = metrics.curves
        if ctx.isRoot {
            var series = [LineSeries(name: "train", xs: curves.epochs, ys: curves.train)]
            if curves.validation.contains(where: \.isFinite) {
                // The validated epochs only (every epoch, or every --validate-every N), joined by the line.
                let validated = curves.validation.indices.filter { curves.validation[$0].isFinite }
                series.append(LineSeries(name: "validation", xs: validated.map { curves.epochs[$0] },
                                         ys: validated.map { curves.validation[$0] }, dashed: true))
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
                           labels: labels, classNames: classNames, run: run, seed: seed)
            return
        }
        let n = min(points, trainer.trainRows)
        let (z, _) = try trainer.evaluator.encode(trainer.trainData.base, rows: n, parameters: p)
        let sampleContext = trainingContexts(trainer, count: points)
        let generated = dataSpace(trainer, try sample(trainer, count: points, seed: seed &+ 1, temperature: 1, context: sampleContext, parameters: p))
        var sampledZ = [Float](repeating: 0, count: points * D)
        StandardNormal.sample(rows: points, dim: D, seed: seed &+ 1, temperature: 1, into: &sampledZ)
        var density: [Double] = []
        let grid = densityGrid
        var xRange = 0.0...1.0, yRange = 0.0...1.0
        let classes = model.contextClasses
        if D == 2 && model.preprocessing == .none && (!model.isConditional || classes != nil) {
            xRange = PlotLimits.padded(rawTrain.column(0), margin: 0.1)
            yRange = PlotLimits.padded(rawTrain.column(1), margin: 0.1)
            let cx = Plots.gridCenters(xRange, count: grid), cy = Plots.gridCenters(yRange, count: grid)
            var cells = [Float]()
            cells.reserveCapacity(grid * grid * 2)
            for y in cy { for x in cx { cells.append(Float(x)); cells.append(Float(y)) } }
            // log p(x), or for a class-conditional flow log Σ_c π_c p(x | c) with the training split's π_c.
            let ld = try cells.withUnsafeBufferPointer { cb in
                try classes.map { c in
                    try trainer.evaluator.classMixtureLogDensity(cb.baseAddress!, rows: grid * grid,
                                                                 weights: FlowRows.classFrequencies(labels ?? [], classes: c), parameters: p)
                } ?? trainer.evaluator.logDensity(cb.baseAddress!, rows: grid * grid, parameters: p)
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
        if let classes, let labels {
            try write(byClass(data: rawTrain, labels: labels, samples: generated, sampleContext: sampleContext ?? [],
                              classes: classes, names: classNames, points: n, epoch: epoch),
                      to: run.file("samples_by_class.svg"))
        }
        if !density.isEmpty {
            try write(Plots.heatMap(values: density, nx: grid, ny: grid, xRange: xRange, yRange: yRange,
                                    title: classes == nil ? "Learned log-density, epoch \(epoch)"
                                        : "Learned log-density log Σ_c π_c p(x | c), epoch \(epoch)", points: data,
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

    /// `count` contexts `[count, K]` (data units) for drawing samples of a conditional flow: row i is training row
    /// (i mod N)'s context; nil for an unconditional flow.
    static func trainingContexts(_ trainer: DataParallelTrainer, count: Int) -> [Float]? {
        let D = trainer.network.dim, W = trainer.network.inputWidth, K = W - D
        guard K > 0 else { return nil }
        var c = [Float](repeating: 0, count: count * K)
        for i in 0..<count {
            let row = trainer.trainData.base + (i % trainer.trainRows) * W + D
            for k in 0..<K { c[i * K + k] = row[k] }
        }
        return c
    }

    /// `count` samples in the flow's input space with the contexts `context` `[count, K]` (nil: unconditional).
    static func sample(_ trainer: DataParallelTrainer, count: Int, seed: UInt64, temperature: Double, context: [Float]?,
                       parameters p: UnsafePointer<Float>) throws -> [Float] {
        guard let context else { return try trainer.evaluator.sample(count: count, seed: seed, temperature: temperature, parameters: p) }
        return try context.withUnsafeBufferPointer {
            try trainer.evaluator.sample(count: count, seed: seed, temperature: temperature,
                                         context: ContextRows($0.baseAddress!, stride: trainer.network.contextFeatures), parameters: p)
        }
    }

    /// The class of every one-hot context row `[count, C]`.
    static func classOf(_ oneHot: [Float], classes: Int) -> [Int] {
        (0..<(oneHot.count / classes)).map { i in (0..<classes).first { oneHot[i * classes + $0] == 1 } ?? 0 }
    }

    /// Data and samples of a class-conditional flow, one colour per class: the first two features.
    static func byClass(data: Matrix<Double>, labels: [Int], samples: Matrix<Double>, sampleContext: [Float], classes: Int,
                        names: [String]?, points n: Int, epoch: Int) -> String {
        let D = data.columns
        let sampleClasses = classOf(sampleContext, classes: classes)
        func series(_ m: Matrix<Double>, _ cls: [Int], rows: Int) -> [ScatterSeries] {
            (0..<classes).map { k in
                let idx = (0..<rows).filter { cls[$0] == k }
                return ScatterSeries(name: names?[k] ?? "class \(k)",
                                     points: Points2D(xs: idx.map { m.values[$0 * D] }, ys: idx.map { m.values[$0 * D + 1] }),
                                     color: ColorMap.categorical[k % ColorMap.categorical.count])
            }
        }
        let dataSeries = series(data, labels, rows: n), sampleSeries = series(samples, sampleClasses, rows: samples.rows)
        let x = PlotLimits.robust(dataSeries.flatMap(\.points.xs) + sampleSeries.flatMap(\.points.xs))
        let y = PlotLimits.robust(dataSeries.flatMap(\.points.ys) + sampleSeries.flatMap(\.points.ys))
        return Plots.panelGrid(panels: [
            ScatterPanelSpec(title: "Data, by class", series: dataSeries, xLabel: "x\u{2081}", yLabel: "x\u{2082}", xLimits: x, yLimits: y),
            ScatterPanelSpec(title: "Samples x ~ p(x | c), by c", series: sampleSeries, xLabel: "x\u{2081}", yLabel: "x\u{2082}", xLimits: x, yLimits: y),
        ], columns: 2, title: "Class-conditional RealNVP, epoch \(epoch)")
    }

    /// Generated images per temperature beside real images per class.
    static func imageGrids(ctx: RunContext, trainer: DataParallelTrainer, parameters p: UnsafePointer<Float>, epoch: Int,
                           shape: [Int], rawTrain: Matrix<Double>, labels: [Int]?, classNames: [String]?, run: RunDirectory,
                           seed: UInt64) throws {
        let D = trainer.network.dim
        let columns = 10
        var generated: [[Double]] = []
        // Rows: the temperatures; for a class-conditional flow, the classes at τ = 0.8 (other contexts: each row
        // with the training rows' contexts).
        let classes = trainer.configuration.model.contextClasses
        let rowCount = classes ?? temperatures.count
        for r in 0..<rowCount {
            let tau = classes == nil ? temperatures[r] : 0.8
            var context = trainingContexts(trainer, count: columns)
            if let c = classes { context = (0..<columns).flatMap { _ in (0..<c).map { Float($0 == r ? 1 : 0) } } }
            let u = try sample(trainer, count: columns, seed: seed &+ UInt64(100 + r), temperature: tau, context: context, parameters: p)
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
        let rows = rowCount
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
            ImageGridSpec(title: classes == nil ? "Generated (rows: temperature τ)" : "Generated x ~ p(x | class), τ = 0.8 (rows: class)",
                          images: generated, imageHeight: shape[0], imageWidth: shape[1], rows: rows, columns: columns,
                          rowLabels: classes == nil ? temperatures.map { "τ = \($0)" } : (0..<rows).map { classNames?[$0] ?? "\($0)" },
                          valueRange: 0...levels),
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
