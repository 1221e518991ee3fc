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
            --class k the class of a class-conditional model.
            """)
    @OptionGroup var modelOption: ModelOption
    @Option(name: .shortAndLong, help: "Number of samples.") var n: Int = 1000
    @Option(help: "Seed of the sampling noise.") var seed: UInt64 = 0
    @Option(help: "Temperature τ: z ~ N(0, τ²I).") var temperature: Double = 1
    @Option(help: ArgumentHelp("Output file (.csv or .npy).", valueName: "file")) var out: String
    @OptionGroup var contextOption: ContextOption
    @Option(name: .customLong("class"), help: ArgumentHelp("Sample x ~ p(x | class k) from a class-conditional model (trained with --condition class).", valueName: "k"))
    var classLabel: Int?
    @OptionGroup var threadOption: ThreadOption

    /// Bytes held per output value at the peak of `sample` (the samples, their gathered copy, the data-space
    /// conversion through `Double`, the CSV text): about 18 measured; `-n` is refused when this exceeds memory.
    static let bytesPerValue = 20

    mutating func run() throws {
        let ctx = try RunContext()
        let c = self
        let (loaded, context) = ctx.setUp { () throws -> (LoadedModel, Matrix<Float>?) in
            if c.n < 1 { throw ValidationError("invalid -n \(c.n): need at least 1 sample") }
            if !(c.temperature >= 0) || !c.temperature.isFinite {
                throw ValidationError("invalid --temperature \(c.temperature): must be finite and ≥ 0")
            }
            try OutputFile.check(c.out)
            let loaded = try LoadedModel(path: try c.modelOption.path, ctx: ctx, threads: try c.threadOption.resolved())
            try c.checkMemory(dim: loaded.dim)
            let context = try loaded.context(file: c.contextOption.context, classLabel: c.classLabel, rows: c.n, rowsOf: "samples (-n)")
            return (loaded, context)
        }
        do {
            let p = loaded.parameters.base
            let u = try context.map { c in
                try c.withContextRows { try loaded.evaluator.sample(count: n, seed: seed, temperature: temperature, context: $0, parameters: p) }
            } ?? loaded.evaluator.sample(count: n, seed: seed, temperature: temperature, parameters: p)
            let x = loaded.dataSpace(u)
            if let bad = NonFiniteRows(x.values, columns: loaded.dim) {
                NonFiniteResult.refuse(NonFiniteResult(description: "\(bad.count) of \(n) samples are not finite (\(cause(loaded))): nothing written"), ctx)
            }
            if ctx.isRoot {
                try OutputFile.write(x.values, rows: n, columns: loaded.dim, to: out)
                let given = classLabel.map { ", class \($0)" } ?? contextOption.context.map { ", context \($0)" } ?? ""
                FileHandle.standardError.write(Data("wrote \(n) samples (D = \(loaded.dim), τ = \(temperature), seed \(seed)\(given)) to \(out)\n".utf8))
            }
        } catch { ctx.fail(error) }
        ctx.finish()
    }

    /// Refuses an `-n` whose samples would not fit in the machine's physical memory.
    func checkMemory(dim: Int) throws {
        let physical = MachineMemory.physicalBytes
        let (values, overflow) = n.multipliedReportingOverflow(by: dim)
        let (bytes, overflow2) = values.multipliedReportingOverflow(by: Self.bytesPerValue)
        guard overflow || overflow2 || bytes > physical else { return }
        let needed = overflow || overflow2 ? "more than \(Int.max)" : "about \(bytes)"
        throw ValidationError("invalid -n \(n): \(n) samples of D = \(dim) need \(needed) bytes of memory; this machine has \(physical)")
    }

    /// Why samples came out non-finite: a temperature that overflows the Float latents, else the model's g(z).
    func cause(_ loaded: LoadedModel) -> String {
        // |z| of N(0, 1) draws stays below ~6; τ·z beyond Float's range is ±∞ before the model sees it.
        if temperature * 6 > Double(Float.greatestFiniteMagnitude) { return "--temperature \(temperature) overflows" }
        let largest = loaded.checkpoint.model.parameters.reduce(Float(0)) { max($0, abs($1)) }
        return "the model's g(z) overflows at --temperature \(temperature)" + (largest > 1e6 ? "; its largest |parameter| is \(largest)" : "")
    }
}
