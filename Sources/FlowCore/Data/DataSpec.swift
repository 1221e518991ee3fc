import Foundation

/// Where a run's data comes from: a named synthetic set (generated from the seed), a bundled real data set
/// (`digits`, `wine`, `breast-cancer`), or a user's file.
/// Stored in the run directory's `config.json` and hashed across ranks.
public struct DataSpec: Codable, Hashable, Sendable {
    /// A ``ToyDataset`` name, or nil when `file` is set.
    public var dataset: String?
    /// A CSV or `.npy` file, or nil.
    public var file: String?
    /// Rows to generate for a synthetic set.
    public var samples: Int
    /// Noise level of a synthetic set (nil = the set's default).
    public var noise: Double?
    /// Seed of a synthetic set.
    public var seed: UInt64
    /// What a conditional flow p(x | c) conditions on (nil: an unconditional flow on every column).
    public var condition: Conditioning?
    /// `--limit-rows N`: only the first N rows of the data (quick trials, tests); nil for all.
    public var limitRows: Int?

    /// A spec.
    public init(dataset: String? = "moons", file: String? = nil, samples: Int = 3000, noise: Double? = nil, seed: UInt64 = 0,
                condition: Conditioning? = nil) {
        self.condition = condition
        self.dataset = dataset
        self.file = file
        self.samples = samples
        self.noise = noise
        self.seed = seed
    }

    private enum CodingKeys: String, CodingKey { case dataset, file, samples, noise, seed, contextColumns = "context_columns", condition, limitRows = "limit_rows" }

    /// Decodes a spec; `samples` and `noise` may be absent (as they are for files and bundled sets), then
    /// 3000 and nil.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        dataset = try c.decodeIfPresent(String.self, forKey: .dataset)
        file = try c.decodeIfPresent(String.self, forKey: .file)
        samples = try c.decodeIfPresent(Int.self, forKey: .samples) ?? 3000
        noise = try c.decodeIfPresent(Double.self, forKey: .noise)
        seed = try c.decode(UInt64.self, forKey: .seed)
        if let k = try c.decodeIfPresent(Int.self, forKey: .contextColumns) {
            condition = .columns(k)
        } else if let name = try c.decodeIfPresent(String.self, forKey: .condition) {
            guard name == "class" else {
                throw DecodingError.dataCorruptedError(forKey: .condition, in: c, debugDescription: "unknown condition '\(name)' (known: class)")
            }
            condition = .classLabel
        }
        limitRows = try c.decodeIfPresent(Int.self, forKey: .limitRows)
    }

    /// Encodes the spec; `samples` and `noise` only for a synthetic set (a file or a bundled set has its own rows).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(dataset, forKey: .dataset)
        try c.encodeIfPresent(file, forKey: .file)
        if file == nil && bundled == nil {
            try c.encode(samples, forKey: .samples)
            try c.encodeIfPresent(noise, forKey: .noise)
        }
        try c.encode(seed, forKey: .seed)
        // Written only for a conditional run: an unconditional spec keeps the bytes it had before.
        switch condition {
        case .columns(let k)?: try c.encode(k, forKey: .contextColumns)
        case .classLabel?: try c.encode("class", forKey: .condition)
        case nil: break
        }
        try c.encodeIfPresent(limitRows, forKey: .limitRows)
    }

    /// Names accepted by `--dataset`.
    public static var datasetNames: [String] { ToyDataset.allCases.map(\.rawValue) + BundledDataset.allCases.map(\.rawValue) }

    /// The bundled data set this spec names, if any.
    public var bundled: BundledDataset? { dataset.flatMap(BundledDataset.init(rawValue:)) }

    /// A short human description ("moons (3000 points, noise 0.05, seed 0)" or the file path), with the
    /// conditioning ("…, conditioned on the class").
    public var summary: String {
        let base: String
        if let file {
            base = file
        } else if let b = bundled {
            base = "\(b.rawValue) (\(b == .fashionMNIST ? "Debian's dataset-fashion-mnist" : "bundled"))"
        } else {
            let set = dataset.flatMap(ToyDataset.init(rawValue:))
            base = "\(dataset ?? "?") (\(samples) points, noise \(noise ?? set?.defaultNoise ?? 0), seed \(seed))"
        }
        return base + (limitRows.map { ", first \($0) rows" } ?? "") + (condition.map { ", " + $0.summary } ?? "")
    }

    /// The memory a generated 2-D point takes at the peak of `train` or `evaluate`, bytes: the points (16) and the
    /// commands' working copies of them (measured: 61–63).
    public static let bytesPerPoint = 64

    /// Loads or generates the rows `[rows, D]` in data units.
    /// - Throws: ``FlowIOError`` for unreadable or malformed files (naming file, line and column),
    ///   ``FlowConfigurationError`` for an unknown data set, fewer than 2 samples or more than fit in this
    ///   machine's physical memory (``bytesPerPoint`` bytes per point), or a noise that is negative, not finite or takes the
    ///   generated points beyond Float32's range.
    public func load() throws -> Matrix<Double> { try loadWithLabels().features }

    /// The rows and, for bundled data sets, the label of every row (nil otherwise).
    /// - Throws: as ``load()``.
    public func loadWithLabels() throws -> (features: Matrix<Double>, labels: [Int]?) {
        if let limitRows, limitRows < 1 {
            throw FlowConfigurationError(field: "limit-rows", value: "\(limitRows)", message: "need at least 1 row")
        }
        let (x, labels): (Matrix<Double>, [Int]?)
        if file == nil, let b = bundled {
            let c = try b.load()
            (x, labels) = (c.features, c.labels)
        } else {
            (x, labels) = (try loadUnlabeled(), nil)
        }
        guard let limitRows, limitRows < x.rows else { return (x, labels) }
        return (x.gatherRows(0..<limitRows), labels.map { Array($0[0..<limitRows]) })
    }

    func loadUnlabeled() throws -> Matrix<Double> {
        if let file {
            if IDXReader.isIDXName(file) {
                // The MNIST family's IDX files: [N, D] or images [N, H, W] as rows of H·W values (0 … 255).
                let a = try IDXReader.read(path: file)
                guard a.shape.count >= 2 else {
                    throw FlowIOError(path: file, message: "holds a 1-D IDX array (\(a.shape[0]) values: labels?); a data file has a row per sample, [N, D] or images [N, H, W]")
                }
                return Matrix(rows: a.shape[0], columns: a.values.count / a.shape[0], values: a.values.map(Double.init))
            }
            let table: TabularData
            switch (file as NSString).pathExtension.lowercased() {
            case "npy": table = try NPYReader.read(path: file)
            case "csv", "txt", "tsv", "": table = try CSVReader.read(path: file)
            default:
                throw FlowIOError(path: file, message: "unknown file type '.\((file as NSString).pathExtension)': use .csv, .npy or an IDX file (*-idx3-ubyte[.gz])")
            }
            return Matrix(rows: table.rows, columns: table.columns, values: table.values)
        }
        guard let name = dataset else { throw FlowConfigurationError(field: "dataset", message: "no data set or file given") }
        guard let set = ToyDataset(rawValue: name) else {
            throw FlowConfigurationError(field: "dataset", message: "unknown data set '\(name)'; known: \(Self.datasetNames.joined(separator: ", "))")
        }
        guard samples >= 2 else { throw FlowConfigurationError(field: "samples", value: "\(samples)", message: "need at least 2 points") }
        // Not only the generated Double points (16 bytes each): train's and evaluate's working copies (Float rows,
        // splits, latents, log-densities) peak at about 61–63 bytes per 2-D point (measured at 10⁷ and 5·10⁷ points).
        let (bytes, overflow) = samples.multipliedReportingOverflow(by: Self.bytesPerPoint)
        let memory = MachineMemory.physicalBytes
        if overflow || bytes > memory {
            throw FlowConfigurationError(
                field: "samples", value: "\(samples)",
                message: "the points and their working copies need \(overflow ? "more than \(Int.max)" : "\(bytes)") bytes (\(Self.bytesPerPoint) per point), more than this machine's memory (\(memory) bytes)")
        }
        if let noise, !(noise >= 0) || !noise.isFinite {
            throw FlowConfigurationError(field: "noise", value: "\(noise)", message: "must be a finite number ≥ 0")
        }
        let points = set.generate(count: samples, noise: noise, seed: seed)
        // The model computes in Float32: a large noise can take points beyond its range (or, via exp, to NaN).
        if let bad = points.values.firstIndex(where: { !TabularData.isInFloat32Range($0) }) {
            let value = points.values[bad]
            let what = value.isNaN ? "a NaN coordinate" : "a coordinate of \(value), outside the Float32 range (±3.4e38)"
            throw FlowConfigurationError(
                field: "noise", value: "\(noise ?? set.defaultNoise)",
                message: "the generated \(name) point \(bad / 2 + 1) has \(what); use a smaller noise")
        }
        return points
    }
}
