import FlowCore
import FlowPlots
import Foundation

/// Renders a scaling sweep (cluster/scaling.sh's CSV: kind, ranks, threads, workers, batch, samples_per_s,
/// ms_per_step, compute_ms, allreduce_ms, optimizer_ms) as an SVG plot of samples/s and efficiency against
/// workers (ranks × threads) and a markdown table.
///
/// Efficiency of a point with w workers: samples/s ÷ (w × samples/s of 1 rank × 1 thread of the same kind);
/// for weak scaling (fixed rows per rank) this is the usual throughput-based weak efficiency.
enum ScalingReport {
    struct Point {
        var kind: String, ranks: Int, threads: Int, workers: Int, batch: Int
        var samplesPerSecond: Double, msPerStep: Double, computeMs: Double, allreduceMs: Double, optimizerMs: Double
        var efficiency = 0.0
        /// The performance model's time per step (ms) and its error against the measurement, when a network is given.
        var predictedMs: Double?
    }

    /// The α–β model of a network, for predicting each point from the 1-rank point of the same kind and thread count:
    /// t = (compute₁ · (rows per rank ÷ rows₁) + optimiser₁ ÷ (sharded ? ranks : 1)) · max(1, ranks·threads ÷ cores)
    ///     + (1 − hidden) · (2(p−1)α + 2(p−1)/p · n/β),
    /// where the last factor of the first line accounts for ranks that share cores (oversubscribed runs on one box).
    struct Network {
        /// Seconds per message.
        var alpha: Double
        /// Bytes per second.
        var beta: Double
        /// Share of the allreduce hidden behind the backward pass (0…1).
        var hiddenShare: Double
        /// The gradient allreduced each step, bytes.
        var gradientBytes: Double
        /// Cores of the machine the points shared.
        var cores: Int
        /// Whether the points ran with the optimiser sharded over the ranks (one host, `--overlap auto`).
        var shardedOptimizer = false
    }

    /// The model's time per step (ms) of `p`, from the 1-rank point `base` of the same kind and threads.
    static func predictMs(_ p: Point, base: Point, network m: Network) -> Double {
        let rowsPerRank = Double(p.batch) / Double(p.ranks), baseRows = Double(base.batch)
        let sharing = max(1, Double(p.ranks * p.threads) / Double(m.cores)) / max(1, Double(base.threads) / Double(m.cores))
        let optimizer = base.optimizerMs / (m.shardedOptimizer ? Double(p.ranks) : 1)
        let local = (base.computeMs * rowsPerRank / baseRows + optimizer) * sharing
        let ring = BenchCommand.ringTime(bytes: m.gradientBytes, ranks: p.ranks, alpha: m.alpha, beta: m.beta)
        return local + (1 - m.hiddenShare) * ring * 1e3
    }

    static func render(csv: String, svg: String?, markdown: String?, network: Network? = nil) throws {
        guard let text = try? String(contentsOfFile: csv, encoding: .utf8) else {
            throw FlowIOError(path: csv, message: "cannot read the scaling CSV")
        }
        var points: [Point] = []
        for (n, line) in text.split(separator: "\n").enumerated().dropFirst() {
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard f.count == 10, let r = Int(f[1]), let t = Int(f[2]), let w = Int(f[3]), let b = Int(f[4]), let sps = Double(f[5]),
                  let ms = Double(f[6]), let c = Double(f[7]), let a = Double(f[8]), let o = Double(f[9]) else {
                throw FlowIOError(path: csv, line: n + 1, message: "expected kind,ranks,threads,workers,batch,samples_per_s,ms_per_step,compute_ms,allreduce_ms,optimizer_ms")
            }
            points.append(Point(kind: f[0], ranks: r, threads: t, workers: w, batch: b, samplesPerSecond: sps, msPerStep: ms,
                                computeMs: c, allreduceMs: a, optimizerMs: o))
        }
        for kind in Set(points.map(\.kind)) {
            guard let base = points.first(where: { $0.kind == kind && $0.workers == 1 })?.samplesPerSecond else { continue }
            for i in points.indices where points[i].kind == kind {
                points[i].efficiency = points[i].samplesPerSecond / (Double(points[i].workers) * base)
            }
        }
        if let network {
            for i in points.indices {
                if let base = points.first(where: { $0.kind == points[i].kind && $0.ranks == 1 && $0.threads == points[i].threads }) {
                    points[i].predictedMs = predictMs(points[i], base: base, network: network)
                }
            }
        }
        if let svg { try AtomicFile.write(Array(plot(points).utf8), to: svg) }
        if let markdown { try AtomicFile.write(Array(markdownTable(points).utf8), to: markdown) }
        print(markdownTable(points), terminator: "")
    }

    /// Two charts side by side: samples/s and efficiency (%) against workers, one series per kind × threads.
    static func plot(_ points: [Point]) -> String {
        var rate: [LineSeries] = [], efficiency: [LineSeries] = []
        for kind in ["strong", "weak"] {
            for t in Array(Set(points.filter { $0.kind == kind }.map(\.threads))).sorted() {
                let p = points.filter { $0.kind == kind && $0.threads == t }.sorted { $0.workers < $1.workers }
                guard !p.isEmpty else { continue }
                let name = "\(kind), \(t) thread\(t > 1 ? "s" : "") per rank"
                rate.append(LineSeries(name: name, xs: p.map { Double($0.workers) }, ys: p.map(\.samplesPerSecond), dashed: kind == "weak"))
                efficiency.append(LineSeries(name: name, xs: p.map { Double($0.workers) }, ys: p.map { 100 * $0.efficiency }, dashed: kind == "weak"))
            }
        }
        let left = Plots.lineChart(series: rate, title: "Training throughput", xLabel: "workers (ranks × threads)", yLabel: "samples/s",
                                   legend: .topLeft)
        let right = Plots.lineChart(series: efficiency, title: "Parallel efficiency", xLabel: "workers (ranks × threads)",
                                    yLabel: "efficiency (%)", yLimits: 0...110, legend: .bottomLeft)
        func inner(_ svg: String, x: Int) -> String {
            let body = svg.hasPrefix("<?xml") ? String(svg[svg.index(after: svg.firstIndex(of: "\n")!)...]) : svg
            return body.replacingOccurrences(of: "<svg ", with: "<svg x=\"\(x)\" y=\"0\" ", options: [], range: body.range(of: "<svg "))
        }
        return """
            <svg xmlns="http://www.w3.org/2000/svg" width="1360" height="420" viewBox="0 0 1360 420">
            \(inner(left, x: 0))
            \(inner(right, x: 680))
            </svg>

            """
    }

    /// One row per point; with a network model, the predicted ms/step and its error (predicted − measured) ÷ measured.
    static func markdownTable(_ points: [Point]) -> String {
        let model = points.contains { $0.predictedMs != nil }
        var s = "| kind | ranks × threads | workers | global batch | samples/s | efficiency | ms/step | compute | allreduce | optimiser |"
        s += model ? " predicted ms/step | error |\n" : "\n"
        s += "|---|---|---|---|---|---|---|---|---|---|" + (model ? "---|---|\n" : "\n")
        for p in points {
            s += String(format: "| %@ | %d × %d | %d | %d | %.0f | %.0f%% | %.2f | %.2f | %.2f | %.2f |", p.kind, p.ranks, p.threads,
                        p.workers, p.batch, p.samplesPerSecond, 100 * p.efficiency, p.msPerStep, p.computeMs, p.allreduceMs, p.optimizerMs)
            if model {
                if let q = p.predictedMs {
                    s += String(format: " %.2f | %+.1f%% |", q, 100 * (q - p.msPerStep) / p.msPerStep)
                } else {
                    s += " | |"
                }
            }
            s += "\n"
        }
        return s
    }
}
