import ArgumentParser
import FlowCore
import FlowDistributed
import Foundation

/// `flow-mpirun sample`: draw x = g(z), z ~ N(0, τ²I).
struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample", abstract: "Draw samples x = g(z), z ~ N(0, τ²I), from a trained model.",
        discussion: """
            Sample i's noise depends only on (--seed, i): the output is the same under any ranks × threads layout. \
            A conditional model samples x ~ p(x | c): --context FILE gives c (one row per sample, or one row for all), \
            --class k the class of a class-conditional model. Several temperatures (--temperature 0.5,0.8,1) scale the \
            same noise: one block of -n samples per τ, in order. An image model (an image flow, or a model with an \
            image shape) can write a PNG grid (--out samples.png): one block of rows per τ, --columns images per row.
            """)
    @OptionGroup var modelOption: ModelOption
    @Option(name: .shortAndLong, help: "Number of samples.") var n: Int = 1000
    @Option(help: "Seed of the sampling noise.") var seed: UInt64 = 0
    @Option(help: ArgumentHelp("Temperature τ: z ~ N(0, τ²I); a comma-separated list gives one block of -n samples per τ (the same z scaled). (default: 1)", valueName: "τ[,τ…]"),
            transform: Self.temperatures)
    var temperature: [Double] = [1]
    @Option(help: ArgumentHelp("Output file: .csv or .npy (rows [n·temperatures, D]), or .png for an image model (a grid of the samples).", valueName: "file"))
    var out: String
    @Option(help: "Images per row of a .png grid, in each temperature's block (default 10; at most -n).") var columns: Int?
    @OptionGroup var contextOption: ContextOption
    @Option(name: .customLong("class"), help: ArgumentHelp("Sample x ~ p(x | class k) from a class-conditional model (trained with --condition class).", valueName: "k"))
    var classLabel: Int?
    @OptionGroup var threadOption: ThreadOption

    /// Images per grid row: `--columns` (10 by default), at most `-n`.
    var gridColumns: Int { min(columns ?? 10, n) }

    /// Whether `--out` names a PNG grid.
    var isPNG: Bool { (out as NSString).pathExtension.lowercased() == "png" }

    /// "0.5,0.8,1" → [0.5, 0.8, 1].
    static func temperatures(_ text: String) throws -> [Double] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        return try parts.map { part in
            guard let v = Double(part) else {
                throw ValidationError("\"\(part)\" is not a number (give τ or a comma-separated list, e.g. 0.5,0.8,1)")
            }
            return v
        }
    }

    /// Bytes held per output value at the peak of `sample` (the samples, their gathered copy, the data-space
    /// conversion through `Double`, the CSV text): about 18 measured; `-n` is refused when this exceeds memory.
    static let bytesPerValue = 20

    mutating func run() throws {
        let ctx = try RunContext()
        let c = self
        let (loaded, context) = ctx.setUp { () throws -> (LoadedModel, Matrix<Float>?) in
            if c.n < 1 { throw ValidationError("invalid -n \(c.n): need at least 1 sample") }
            if let bad = c.temperature.first(where: { !($0 >= 0) || !$0.isFinite }) {
                throw ValidationError("invalid --temperature \(bad): must be finite and ≥ 0")
            }
            if let k = c.columns, k < 1 { throw ValidationError("invalid --columns \(k): need at least 1 image per row") }
            let png = c.isPNG
            if !png {
                try OutputFile.check(c.out, allowPNG: true)
                if let k = c.columns { throw ValidationError("--columns \(k) applies to a .png grid; --out \(c.out) writes rows") }
            }
            let loaded = try LoadedModel(path: try c.modelOption.path, ctx: ctx, threads: try c.threadOption.resolved())
            if png, loaded.imageShape == nil {
                throw ValidationError("invalid --out \(c.out): a .png grid needs an image model (an image flow, or one trained with --image-shape); this model's D = \(loaded.dim) rows have no image shape: write .csv or .npy")
            }
            if png, let shape = loaded.imageShape {
                try SampleGrid.checkSize(shape: shape, count: c.n, columns: c.gridColumns, blocks: c.temperature.count)
            }
            try c.checkMemory(dim: loaded.dim)
            let context = try loaded.context(file: c.contextOption.context, classLabel: c.classLabel, rows: c.n, rowsOf: "samples (-n)")
            // What every rank must agree on under mpirun (its paths may be spelt per host).
            ctx.sharedContent.append("sample -n \(c.n) --seed \(c.seed) --temperature \(c.temperature.map { "\($0)" }.joined(separator: ","))"
                + (c.classLabel.map { " --class \($0)" } ?? "") + (c.isPNG ? " (png, --columns \(c.gridColumns))" : ""))
            if let context { ctx.sharedContent.append("context " + TrainingRun.hex(context.fingerprint)) }
            return (loaded, context)
        }
        do {
            let p = loaded.parameters.base
            var values: [Float] = []
            for tau in temperature {
                let u = try context.map { c in
                    try c.withContextRows { try loaded.evaluator.sample(count: n, seed: seed, temperature: tau, context: $0, parameters: p) }
                } ?? loaded.evaluator.sample(count: n, seed: seed, temperature: tau, parameters: p)
                let x = loaded.dataSpace(u)
                if let bad = NonFiniteRows(x.values, columns: loaded.dim) {
                    NonFiniteResult.refuse(NonFiniteResult(description: "\(bad.count) of \(n) samples are not finite (\(cause(loaded, temperature: tau))): nothing written"), ctx)
                }
                values += x.values
            }
            if ctx.isRoot {
                let rows = n * temperature.count
                if isPNG, let shape = loaded.imageShape {
                    let grid = SampleGrid(shape: shape, levels: loaded.model.configuration.preprocessing.levels)
                    try AtomicFile.write(grid.png(values, count: rows, columns: gridColumns, blocks: temperature.count), to: out)
                } else {
                    try OutputFile.write(values, rows: rows, columns: loaded.dim, to: out)
                }
                let given = classLabel.map { ", class \($0)" } ?? contextOption.context.map { ", context \($0)" } ?? ""
                let taus = temperature.count <= 8 ? temperature.map { "\($0)" }.joined(separator: ", ")
                    : "\(temperature[0]) … \(temperature[temperature.count - 1]) (\(temperature.count) values)"
                FileHandle.standardError.write(Data("wrote \(counted(rows, "sample")) (D = \(loaded.dim), τ = \(taus), seed \(seed)\(given)) to \(out)\n".utf8))
            }
        } catch { ctx.fail(error) }
        ctx.finish()
    }

    /// Refuses an `-n` whose samples would not fit in the machine's physical memory.
    func checkMemory(dim: Int) throws {
        let physical = MachineMemory.physicalBytes
        let (values, overflow) = n.multipliedReportingOverflow(by: dim * temperature.count)
        let (bytes, overflow2) = values.multipliedReportingOverflow(by: Self.bytesPerValue)
        guard overflow || overflow2 || bytes > physical else { return }
        let needed = overflow || overflow2 ? "more than \(Int.max)" : "about \(bytes)"
        throw ValidationError("invalid -n \(n): \(n) samples of D = \(dim) need \(needed) bytes of memory; this machine has \(physical)")
    }

    /// Why samples came out non-finite: a temperature that overflows the Float latents, else the model's g(z).
    func cause(_ loaded: LoadedModel, temperature: Double) -> String {
        // |z| of N(0, 1) draws stays below ~6; τ·z beyond Float's range is ±∞ before the model sees it.
        if temperature * 6 > Double(Float.greatestFiniteMagnitude) { return "--temperature \(temperature) overflows" }
        let largest = loaded.checkpoint.model.parameters.reduce(Float(0)) { max($0, abs($1)) }
        return "the model's g(z) overflows at --temperature \(temperature)" + (largest > 1e6 ? "; its largest |parameter| is \(largest)" : "")
    }
}
