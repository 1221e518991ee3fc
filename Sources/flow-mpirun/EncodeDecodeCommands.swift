import ArgumentParser
import FlowCore
import FlowDistributed
import Foundation

/// `flow-mpirun encode`: data → latent, file to file.
struct EncodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "encode", abstract: "Map data x to latents z = f(x) (file to file).")
    @OptionGroup var modelOption: ModelOption
    @Option(help: ArgumentHelp("Input data (.csv or .npy), [rows, D]; or one image (.png, 8-bit grey or RGB, alpha dropped) for an image model of discrete data: byte v is level round(v·(levels − 1)/255).", valueName: "file")) var data: String
    @Option(help: ArgumentHelp("Output latents (.csv or .npy).", valueName: "file")) var out: String
    @OptionGroup var contextOption: ContextOption
    @Option(name: .customLong("class"), help: ArgumentHelp("Encode given class k (a class-conditional model).", valueName: "k")) var classLabel: Int?
    @OptionGroup var threadOption: ThreadOption

    mutating func run() throws {
        try FileMapping.run(model: modelOption, input: data, output: out, context: contextOption.context, classLabel: classLabel,
                            threads: threadOption, forward: true)
    }
}

/// `flow-mpirun decode`: latent → data, file to file.
struct DecodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "decode", abstract: "Map latents z to data x = f⁻¹(z) (file to file).")
    @OptionGroup var modelOption: ModelOption
    @Option(help: ArgumentHelp("Input latents (.csv or .npy), [rows, D].", valueName: "file")) var data: String
    @Option(help: ArgumentHelp("Output data (.csv or .npy); or .png for an image model: a grid of the decoded images, 10 per row (one row alone: the bare H×W image).", valueName: "file")) var out: String
    @OptionGroup var contextOption: ContextOption
    @Option(name: .customLong("class"), help: ArgumentHelp("Decode given class k (a class-conditional model).", valueName: "k")) var classLabel: Int?
    @OptionGroup var threadOption: ThreadOption

    mutating func run() throws {
        try FileMapping.run(model: modelOption, input: data, output: out, context: contextOption.context, classLabel: classLabel,
                            threads: threadOption, forward: false)
    }
}

/// `encode` and `decode`: one file of rows through the model, refusing output that is not finite. A conditional
/// model maps x ↔ z given `--context FILE` (one row of c per row, or one row for all).
enum FileMapping {
    /// Maps `input` to `output` through f (`forward`) or f⁻¹, with the contexts in `context` for a conditional model.
    static func run(model: ModelOption, input: String, output: String, context contextFile: String?, classLabel: Int?,
                    threads: ThreadOption, forward: Bool) throws {
        let ctx = try RunContext()
        let pngOut = !forward && (output as NSString).pathExtension.lowercased() == "png"
        let pngIn = forward && (input as NSString).pathExtension.lowercased() == "png"
        let (loaded, x, context) = ctx.setUp { () throws -> (LoadedModel, Matrix<Float>, Matrix<Float>?) in
            if !pngOut { try OutputFile.check(output, allowPNG: !forward) }
            let loaded = try LoadedModel(path: try model.path, ctx: ctx, threads: try threads.resolved())
            if (pngIn || pngOut) && loaded.imageShape == nil {
                throw ValidationError("\(pngIn ? "--data \(input)" : "--out \(output)"): PNG images need an image model (an image flow, or one trained with --image-shape); this model's D = \(loaded.dim) rows have no image shape: use .csv or .npy")
            }
            if pngIn && loaded.model.configuration.preprocessing.levels == nil {
                throw ValidationError("--data \(input): a PNG's bytes are pixel levels, but this model was trained on continuous values (no --dequantize): give its rows as .csv or .npy in the data's own units")
            }
            let x = pngIn ? try ImageRows.read(input, shape: loaded.imageShape!, levels: loaded.model.configuration.preprocessing.levels)
                : try DataSpec(dataset: nil, file: input).load()
            try loaded.checkWidth(x.rows, x.columns, source: input)
            if pngOut { try SampleGrid.checkSize(shape: loaded.imageShape!, count: x.rows, columns: min(x.rows, 10), blocks: 1) }
            let context = try loaded.context(file: contextFile, classLabel: classLabel, rows: x.rows, rowsOf: input)
            // What every rank must agree on under mpirun (its paths may be spelt per host).
            let rows: Matrix<Float> = x.converted()
            ctx.sharedContent.append("\(forward ? "encode" : "decode")\(pngIn ? " (png in)" : "")\(pngOut ? " (png out)" : "") data "
                + TrainingRun.hex(rows.fingerprint) + (classLabel.map { " --class \($0)" } ?? ""))
            if let context { ctx.sharedContent.append("context " + TrainingRun.hex(context.fingerprint)) }
            return (loaded, rows, context)
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
            if ctx.isRoot, pngOut, let shape = loaded.imageShape {
                let grid = SampleGrid(shape: shape, levels: loaded.model.configuration.preprocessing.levels)
                try AtomicFile.write(grid.png(result, count: x.rows, columns: min(x.rows, 10), blocks: 1), to: output)
                FileHandle.standardError.write(Data("wrote \(counted(x.rows, "image")) to \(output)\n".utf8))
            } else if ctx.isRoot {
                try OutputFile.write(result, rows: x.rows, columns: D, to: output, prefix: forward ? "z" : "x")
                FileHandle.standardError.write(Data("wrote \(counted(x.rows, "row")) to \(output)\n".utf8))
            }
        } catch { ctx.fail(error) }
        ctx.finish()
    }
}

/// One PNG image as one row of an image model's data.
enum ImageRows {
    /// The image at `path` as a `[1, C·H·W]` row in data units: 8-bit pixel values v, or for data of `levels`
    /// other than 256 the level round(v·(levels − 1)/255) (the inverse of ``SampleGrid``'s grey).
    /// - Throws: ``FlowIOError`` naming the file when it is not a readable PNG or its size or colour differs
    ///   from the model's images.
    static func read(_ path: String, shape: ImageShape, levels: Int?) throws -> Matrix<Double> {
        let image = try PNGImage.read(path: path)
        guard image.width == shape.width, image.height == shape.height, image.channels == shape.channels else {
            let kind = { (c: Int) in c == 1 ? "grey" : c == 3 ? "RGB" : "\(c)-channel" }
            throw FlowIOError(path: path, message: "is a \(image.width)×\(image.height) \(kind(image.channels)) image; the model's images are \(shape.width)×\(shape.height) \(kind(shape.channels)) (\(shape))")
        }
        var row = image.planar
        if let levels, levels != 256 {
            row = row.map { ($0 * Double(levels - 1) / 255).rounded() }
        }
        return Matrix(rows: 1, columns: row.count, values: row)
    }
}
