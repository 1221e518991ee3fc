extension Plots {
    /// A pairwise scatter matrix for tabular data: one panel per feature pair, real data and model samples
    /// overlaid in two colours (data blue, samples orange, drawn after the data), with a legend row
    /// (`dataLabel`, `samplesLabel`) and feature names on the axes.
    ///
    /// - `data`: flat row-major `[n, dimension]`; `samples`: flat row-major `[m, dimension]` (n and m may
    ///   differ; a trailing partial row is ignored; either may be empty).
    /// - `pairs`: `(xFeature, yFeature)` index pairs, one panel each, in order; pairs with an index outside
    ///   `0..<dimension` are skipped. See ``allFeaturePairs(dimension:limit:)``.
    /// - `featureNames`: one name per feature; missing names default to `"x0"`, `"x1"`, ….
    /// - `columns`: panels per row (default: up to 3).
    ///
    /// Each feature gets one robust range (0.5 %–99.5 % quantiles of data and samples together, 5 % margin)
    /// that every panel using it shares.
    public static func pairwiseScatter(
        data: [Double], samples: [Double], dimension: Int, pairs: [(Int, Int)], featureNames: [String]? = nil,
        columns: Int? = nil, title: String, dataLabel: String = "Data", samplesLabel: String = "Samples"
    ) -> String {
        let d = max(dimension, 1)
        let dataRows = data.count / d, sampleRows = samples.count / d
        func column(_ values: [Double], rows: Int, _ feature: Int) -> [Double] {
            (0..<rows).map { values[$0 * d + feature] }
        }
        let valid = pairs.filter { (0..<dimension).contains($0.0) && (0..<dimension).contains($0.1) }
        var limits: [Int: ClosedRange<Double>] = [:]
        for feature in Set(valid.flatMap { [$0.0, $0.1] }) {
            limits[feature] = PlotLimits.robust(column(data, rows: dataRows, feature) + column(samples, rows: sampleRows, feature))
        }
        func name(_ feature: Int) -> String {
            if let names = featureNames, feature < names.count { return names[feature] }
            return "x\(feature)"
        }
        let panels = valid.map { pair -> ScatterPanelSpec in
            let dataPoints = Points2D(xs: column(data, rows: dataRows, pair.0), ys: column(data, rows: dataRows, pair.1))
            let samplePoints = Points2D(xs: column(samples, rows: sampleRows, pair.0),
                                        ys: column(samples, rows: sampleRows, pair.1))
            return ScatterPanelSpec(
                title: "",
                series: [
                    ScatterSeries(name: dataLabel, points: dataPoints, color: ColorMap.categorical[0], opacity: 0.3),
                    ScatterSeries(name: samplesLabel, points: samplePoints, color: ColorMap.categorical[1], opacity: 0.3),
                ],
                xLabel: name(pair.0), yLabel: name(pair.1), xLimits: limits[pair.0], yLimits: limits[pair.1])
        }
        return panelGrid(panels: panels, columns: columns ?? min(max(panels.count, 1), 3), title: title,
                         panelWidth: 300, panelHeight: 290)
    }

    /// All feature pairs `(i, j)` with `i < j < dimension` in lexicographic order —
    /// `(0, 1), (0, 2), …, (1, 2), …` — truncated to the first `limit` pairs when `limit` is given.
    public static func allFeaturePairs(dimension: Int, limit: Int? = nil) -> [(Int, Int)] {
        var pairs: [(Int, Int)] = []
        for i in 0..<max(dimension, 0) {
            for j in (i + 1)..<max(dimension, i + 1) { pairs.append((i, j)) }
        }
        return limit.map { Array(pairs.prefix(max($0, 0))) } ?? pairs
    }
}
