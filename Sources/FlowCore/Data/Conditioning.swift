import Foundation

/// What a conditional flow p(x | c) conditions on: how a data set's rows split into features x and context c.
///
/// - `columns(K)` (`--context-columns K`): the last K columns of a CSV or `.npy` file are c, the rest x; c is
///   real-valued and gets its own normaliser.
/// - `classLabel` (`--condition class`): c is the one-hot class label `[C]` of a labelled set (the bundled
///   `digits`, `wine`, `breast-cancer`; the synthetic `moons` and `circles`), or, for a file, of its last column
///   (integers 0 … C − 1). No normaliser is fitted for a one-hot context.
public enum Conditioning: Hashable, Sendable {
    case columns(Int)
    case classLabel

    /// "conditioned on the last 2 columns" / "conditioned on the class".
    public var summary: String {
        switch self {
        case .columns(let k): return "conditioned on the last \(k) column\(k == 1 ? "" : "s")"
        case .classLabel: return "conditioned on the class"
        }
    }
}

/// A data set's rows as a flow reads them: x `[rows, D]`, followed for a conditional flow by its context c
/// `[rows, K]` (``DataSpec/loadRows()``).
public struct FlowRows: Sendable {
    /// [x, c] `[rows, D + K]` (data units; one-hot context for class conditioning).
    public var rows: Matrix<Double>
    /// Features D of x.
    public var features: Int
    /// The class of every row, when the set has labels.
    public var labels: [Int]?
    /// The number of classes C of a class-conditional set (K = C), nil otherwise.
    public var classes: Int?
    /// The classes' names (class-conditional sets; "0", "1", … for a file's labels).
    public var classNames: [String]?

    /// Context values per row K.
    public var contextFeatures: Int { rows.columns - features }
    /// x `[rows, D]`.
    public var x: Matrix<Double> { contextFeatures == 0 ? rows : rows.columns(0..<features) }
    /// c `[rows, K]`.
    public var context: Matrix<Double> { rows.columns(features..<rows.columns) }

    /// The fraction of `labels` in each class 0 ..< `classes` (the class weights π_c of a class-conditional model's
    /// marginal Σ_c π_c p(x | c)); zeros for no labels.
    public static func classFrequencies(_ labels: [Int], classes: Int) -> [Double] {
        var counts = [Double](repeating: 0, count: classes)
        for l in labels where l >= 0 && l < classes { counts[l] += 1 }
        return counts.map { labels.isEmpty ? 0 : $0 / Double(labels.count) }
    }

    /// The one-hot rows `[labels.count, classes]` of `labels` (each in 0 ..< classes).
    public static func oneHot(_ labels: [Int], classes: Int) -> Matrix<Double> {
        var m = Matrix<Double>(rows: labels.count, columns: classes, repeating: 0)
        for (i, l) in labels.enumerated() { m.values[i * classes + l] = 1 }
        return m
    }
}

extension DataSpec {
    /// Loads the rows and splits them as ``condition`` says: [x, c] `[rows, D + K]`; x alone without a condition.
    /// - Parameter classes: for class conditioning, the number of classes C of a trained model (its one-hot width;
    ///   every label must be below it); nil derives C from the data (training; then at least 2).
    /// - Throws: as ``load()``; ``FlowConfigurationError`` (field `context-columns` or `condition`) when the set
    ///   has too few columns for K context columns and D ≥ 2 features, has no class labels, or a file's label
    ///   column holds values that are not integers 0 … C − 1 (naming the row).
    public func loadRows(classes fixedClasses: Int? = nil) throws -> FlowRows {
        let (data, labels) = try loadWithLabels()
        let source = file ?? "--dataset \(dataset ?? "")"
        switch condition {
        case nil:
            return FlowRows(rows: data, features: data.columns, labels: labels)
        case .columns(let k):
            guard k >= 1 else {
                throw FlowConfigurationError(field: "context-columns", value: "\(k)", message: "need at least 1 context column")
            }
            guard data.columns >= k + 2 else {
                throw FlowConfigurationError(field: "context-columns", value: "\(k)",
                    message: "\(source) has \(data.columns) column\(data.columns == 1 ? "" : "s"); need at least \(k + 2) (D ≥ 2 features, then the \(k) context column\(k == 1 ? "" : "s"))")
            }
            return FlowRows(rows: data, features: data.columns - k, labels: labels)
        case .classLabel:
            if file != nil {
                // A file's last column holds the class 0 … C − 1.
                guard data.columns >= 3 else {
                    throw FlowConfigurationError(field: "condition", value: "class",
                        message: "\(source) has \(data.columns) columns; need D ≥ 2 features and a last column with the class")
                }
                let d = data.columns - 1
                var fileLabels: [Int] = []
                fileLabels.reserveCapacity(data.rows)
                for i in 0..<data.rows {
                    let v = data.values[i * data.columns + d]
                    guard v >= 0, v.rounded() == v else {
                        throw FlowConfigurationError(field: "condition", value: "class",
                            message: "\(source): row \(i + 1), column \(d + 1) holds \(v); the last column must hold the class as an integer 0, 1, 2, …")
                    }
                    // Bounded before the one-hot rows are made (C columns each); the classes' count is checked below.
                    guard v < Double(fixedClasses ?? max(2, data.rows)) else {
                        let shown = v < 1e15 ? "\(Int(v))" : "\(v)"
                        throw FlowConfigurationError(field: "condition", value: "class", message: "\(source): row \(i + 1), column \(d + 1) holds class \(shown); "
                            + (fixedClasses.map { "the model has classes 0…\($0 - 1)" } ?? "more than the \(data.rows) rows could hold; classes are numbered 0 … C−1"))
                    }
                    fileLabels.append(Int(v))
                }
                let classes = fixedClasses ?? (fileLabels.max() ?? 0) + 1
                if let bad = fileLabels.firstIndex(where: { $0 >= classes }) {
                    throw FlowConfigurationError(field: "condition", value: "class",
                        message: "\(source): row \(bad + 1), column \(d + 1) holds class \(fileLabels[bad]); the model has classes 0…\(classes - 1)")
                }
                guard classes >= 2 else {
                    throw FlowConfigurationError(field: "condition", value: "class", message: "\(source): the last column holds only class 0; need at least 2 classes")
                }
                if fixedClasses == nil {
                    // Training: every class 0 … C−1 must occur (a missing one would be a class the model never sees).
                    var seen = [Bool](repeating: false, count: classes)
                    for l in fileLabels { seen[l] = true }
                    let missing = seen.indices.filter { !seen[$0] }
                    if let first = missing.first {
                        let at = fileLabels.firstIndex(of: classes - 1)! + 1
                        throw FlowConfigurationError(field: "condition", value: "class",
                            message: "\(source): the classes run up to \(classes - 1) (row \(at)), but \(missing.count) of 0 … \(classes - 1) never occur (the first: \(first)); number the classes 0 … C−1 without gaps")
                    }
                }
                return FlowRows(rows: .concatenatingColumns(data.columns(0..<d), FlowRows.oneHot(fileLabels, classes: classes)),
                                features: d, labels: fileLabels, classes: classes, classNames: (0..<classes).map(String.init))
            }
            let names = bundled?.classNames ?? dataset.flatMap(ToyDataset.init(rawValue:))?.classNames
            guard let labels = labels ?? toyLabels(rows: data.rows), let names else {
                throw FlowConfigurationError(field: "condition", value: "class",
                    message: "\(source) has no class labels (labelled: digits, wine, breast-cancer, moons, circles; or a file whose last column is the class)")
            }
            return FlowRows(rows: .concatenatingColumns(data, FlowRows.oneHot(labels, classes: names.count)),
                            features: data.columns, labels: labels, classes: names.count, classNames: names)
        }
    }

    /// The labels of a synthetic set made of two parts (moons, circles), nil otherwise.
    func toyLabels(rows: Int) -> [Int]? {
        guard file == nil, bundled == nil, let set = dataset.flatMap(ToyDataset.init(rawValue:)) else { return nil }
        return set.labels(count: rows, seed: seed)
    }
}
