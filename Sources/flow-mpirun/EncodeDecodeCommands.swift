import ArgumentParser
import FlowCore
import FlowDistributed
import Foundation

/// `flow-mpirun encode`: data → latent, file to file.
struct EncodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "encode", abstract: "Map data x to latents z = f(x) (file to file).")
    @OptionGroup var modelOption: ModelOption
    @Option(help: ArgumentHelp("Input data (.csv or .npy), [rows, D].", valueName: "file")) var data: String
    @Option(help: ArgumentHelp("Output latents (.csv or .npy).", valueName: "file")) var out: String
    @OptionGroup var contextOption: ContextOption
    @OptionGroup var threadOption: ThreadOption

    mutating func run() throws {
        try FileMapping.run(model: modelOption, input: data, output: out, context: contextOption.context, threads: threadOption, forward: true)
    }
}

/// `flow-mpirun decode`: latent → data, file to file.
struct DecodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "decode", abstract: "Map latents z to data x = f⁻¹(z) (file to file).")
    @OptionGroup var modelOption: ModelOption
    @Option(help: ArgumentHelp("Input latents (.csv or .npy), [rows, D].", valueName: "file")) var data: String
    @Option(help: ArgumentHelp("Output data (.csv or .npy).", valueName: "file")) var out: String
    @OptionGroup var contextOption: ContextOption
    @OptionGroup var threadOption: ThreadOption

    mutating func run() throws {
        try FileMapping.run(model: modelOption, input: data, output: out, context: contextOption.context, threads: threadOption, forward: false)
    }
}

/// `encode` and `decode`: one file of rows through the model, refusing output that is not finite. A conditional
/// model maps x ↔ z given `--context FILE` (one row of c per row, or one row for all).
enum FileMapping {
    /// Maps `input` to `output` through f (`forward`) or f⁻¹, with the contexts in `context` for a conditional model.
    static func run(model: ModelOption, input: String, output: String, context contextFile: String?, threads: ThreadOption,
                    forward: Bool) throws {
        let ctx = try RunContext()
        let (loaded, x, context) = ctx.setUp { () throws -> (LoadedModel, Matrix<Float>, Matrix<Float>?) in
            try OutputFile.check(output)
            let loaded = try LoadedModel(path: try model.path, ctx: ctx, threads: try threads.resolved())
            let x = try DataSpec(dataset: nil, file: input).load()
            try loaded.checkWidth(x.rows, x.columns, source: input)
            let context = try loaded.context(file: contextFile, rows: x.rows, rowsOf: input)
            return (loaded, x.converted(), context)
        }
        do {
            let D = loaded.dim, p = loaded.parameters.base
            let result: [Float]
            if forward {
                let (pre, _) = try loaded.model.configuration.preprocessing.forward(x.converted(to: Double.self))
                let u = loaded.inputRows(pre.converted(to: Float.self), context: context)
                result = try u.values.withUnsafeBufferPointer { try loaded.evaluator.encode($0.baseAddress!, rows: x.rows, parameters: p).z }
            } else {
                let u = try x.values.withUnsafeBufferPointer { z in
                    try context.map { c in
                        try c.withContextRows { try loaded.evaluator.decode(z.baseAddress!, context: $0, rows: x.rows, parameters: p) }
                    } ?? loaded.evaluator.decode(z.baseAddress!, rows: x.rows, parameters: p)
                }
                result = loaded.dataSpace(u).values
            }
            _ = D
            if let bad = NonFiniteRows(result, columns: D) {
                let map = forward ? "encoding" : "decoding"
                let why = forward ? "the model's f(x) overflows there" : "the model's g(z) overflows there"
                let at = NonFiniteRows.location(of: bad.first, in: input, isFile: true)
                NonFiniteResult.refuse(NonFiniteResult(description: "\(at): \(map) gives non-finite values "
                    + "(\(bad.count) of \(x.rows) rows): \(why): nothing written"), ctx)
            }
            if ctx.isRoot {
                try OutputFile.write(result, rows: x.rows, columns: D, to: output)
                FileHandle.standardError.write(Data("wrote \(x.rows) rows to \(output)\n".utf8))
            }
        } catch { ctx.fail(error) }
        ctx.finish()
    }
}
