import ArgumentParser
import FlowCore
import FlowDistributed
import Foundation

/// `--context FILE`: the context c of a conditional model p(x | c), shared by evaluate, sample, encode and decode.
struct ContextOption: ParsableArguments {
    @Option(help: ArgumentHelp("The context c of a conditional model: a CSV or .npy file [rows, K], one row per row of data (or sample), or one row for all.", valueName: "file"))
    var context: String?
}

extension LoadedModel {
    /// The model's context width K (0: unconditional).
    var contextFeatures: Int { model.contextFeatures }

    /// The conditioning a conditional model was trained with, as a data spec's condition (nil: unconditional).
    var conditioning: Conditioning? {
        let m = model.configuration
        guard m.contextFeatures > 0 else { return nil }
        return m.contextClasses != nil ? .classLabel : .columns(m.contextFeatures)
    }

    /// What the model conditions on, for messages ("a conditional model p(x | c) with K = 2 context values").
    var conditionalDescription: String {
        if let c = model.configuration.contextClasses { return "a class-conditional model p(x | class) with \(c) classes" }
        return "a conditional model p(x | c) with K = \(contextFeatures) context value\(contextFeatures == 1 ? "" : "s")"
    }

    /// The context `[n, K]` or `[1, K]` (broadcast) for `rows` rows, read from `file` (`--context`), or the one-hot
    /// row of `classLabel` (`--class`); nil for an unconditional model given neither.
    /// - Throws: `ValidationError` for a context given to an unconditional model, none given to a conditional one,
    ///   or a class out of range; ``FlowIOError`` naming the file for a width other than K, a row count other than
    ///   `rows` or 1, or a non-finite value.
    func context(file: String?, classLabel: Int? = nil, rows: Int, rowsOf what: String) throws -> Matrix<Float>? {
        let K = contextFeatures
        if file != nil && classLabel != nil { throw ValidationError("give either --context or --class, not both") }
        if let k = classLabel {
            guard let classes = model.configuration.contextClasses else {
                throw ValidationError("--class \(k): the model is \(K == 0 ? "unconditional" : conditionalDescription.replacingOccurrences(of: "a conditional", with: "conditional on real values, not a class:")); --class needs a model trained with --condition class")
            }
            guard k >= 0 && k < classes else { throw ValidationError("invalid --class \(k): the model has classes 0…\(classes - 1)") }
            return Matrix(rows: 1, columns: classes, values: (0..<classes).map { $0 == k ? 1 : 0 })
        }
        guard let file else {
            if K == 0 { return nil }
            let classHint = model.configuration.contextClasses != nil ? " (or --class k)" : ""
            throw ValidationError("the model is \(conditionalDescription): give --context FILE with one row of c per row of \(what), or one row for all\(classHint)")
        }
        guard K > 0 else { throw ValidationError("--context \(file): the model is unconditional; it takes no context") }
        let c = try DataSpec(dataset: nil, file: file).load()
        guard c.columns == K else {
            throw FlowIOError(path: file, message: "has \(c.columns) column\(c.columns == 1 ? "" : "s"); the model's context has K = \(K)")
        }
        guard c.rows == rows || c.rows == 1 else {
            throw FlowIOError(path: file, message: "has \(c.rows) rows for \(rows) rows of \(what); give one row of c per row, or one row for all")
        }
        if let bad = c.values.firstIndex(where: { !$0.isFinite || !TabularData.isInFloat32Range($0) }) {
            throw FlowIOError(path: file, message: "row \(bad / K + 1), column \(bad % K + 1) holds \(c.values[bad]); a context must be finite (within Float32's range)")
        }
        if model.configuration.contextClasses != nil,
           let bad = (0..<c.rows).first(where: { i in
               let row = c.row(i)
               return !(row.allSatisfy { $0 == 0 || $0 == 1 } && row.filter { $0 == 1 }.count == 1)
           }) {
            let shown = c.row(bad).map { $0 == $0.rounded() && abs($0) < 1e15 ? String(Int($0)) : "\($0)" }.joined(separator: ", ")
            throw FlowIOError(path: file, message: "row \(bad + 1) is [\(shown)], not a one-hot class; the model is class-conditional: each row needs a single 1 among 0s (or use --class k)")
        }
        return c.converted()
    }
}

extension LoadedModel {
    /// The flow's input rows [u, c] `[n, D + K]` from u `[n, D]` (after the preprocessing) and the contexts
    /// (`[n, K]` or `[1, K]`); u itself for an unconditional model.
    func inputRows(_ u: Matrix<Float>, context: Matrix<Float>?) -> Matrix<Float> {
        context.map { .concatenatingColumns(u, $0) } ?? u
    }
}

extension Matrix where Scalar == Float {
    /// These contexts as ``ContextRows`` for the evaluator (one row for all when there is a single row and
    /// `rows` > 1), valid inside `body`.
    func withContextRows<R>(_ body: (ContextRows) throws -> R) rethrows -> R {
        try values.withUnsafeBufferPointer { try body(ContextRows($0.baseAddress!, stride: rows == 1 ? 0 : columns)) }
    }
}
