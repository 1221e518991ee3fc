/// The small public data sets embedded in the binary (see Data/README.md for sources and licence).
///
/// | name | rows × features | what |
/// |---|---|---|
/// | `digits` | 1797 × 64 | UCI optical digits: 8×8 images, pixels 0…16 (17 levels); label 0…9 kept apart |
/// | `wine` | 178 × 13 | UCI wine: continuous chemical measurements; class 0…2 kept apart |
/// | `breast-cancer` | 569 × 30 | UCI breast cancer (diagnostic): continuous features; class 0/1 kept apart |
/// | `fashion-mnist` | 60,000 × 784 | Zalando's Fashion-MNIST (MIT licence): 28×28 images, pixels 0…255 (256 levels); the 10,000 test images apart. Not embedded: read from Debian's `dataset-fashion-mnist` (``FashionMNIST``) |
public enum BundledDataset: String, CaseIterable, Codable, Sendable {
    case digits
    case wine
    case breastCancer = "breast-cancer"
    case fashionMNIST = "fashion-mnist"

    /// Features `[rows, D]` (data units), the label of every row, and the image shape / number of
    /// discrete levels where they apply.
    public struct Contents: Sendable {
        /// The features `[rows, D]` in data units (the label column removed).
        public var features: Matrix<Double>
        /// The class label of every row.
        public var labels: [Int]
        /// `[H, W]` for image data (digits: [8, 8]).
        public var imageShape: [Int]?
        /// Number of discrete levels of every feature (digits: 17), nil for continuous data.
        public var levels: Int?
        /// Names of the label values.
        public var classNames: [String]
    }

    /// Parses the embedded text (Fashion-MNIST: reads its training files, ``FashionMNIST``).
    /// - Throws: ``FlowIOError`` when Fashion-MNIST's files are missing or malformed (naming the file).
    public func load() throws -> Contents {
        switch self {
        case .fashionMNIST:
            return try FashionMNIST.load(.train)
        case .digits:
            var values: [Double] = []
            var labels: [Int] = []
            values.reserveCapacity(1797 * 64)
            for line in BundledDatasetText.digits.utf8.split(separator: UInt8(ascii: "\n")) {
                let codes = line.map { Int($0) - Int(UInt8(ascii: "a")) }
                values.append(contentsOf: codes[0..<64].map(Double.init))
                labels.append(codes[64])
            }
            return Contents(features: Matrix(rows: labels.count, columns: 64, values: values), labels: labels,
                            imageShape: [8, 8], levels: 17, classNames: (0...9).map(String.init))
        case .wine:
            return Self.parseCSV(BundledDatasetText.wine)
        case .breastCancer:
            return Self.parseCSV(BundledDatasetText.breastCancer)
        }
    }

    /// The names of the label values, without loading the rows.
    public var classNames: [String] {
        switch self {
        case .digits: (0...9).map(String.init)
        case .wine: Self.header(BundledDatasetText.wine)
        case .breastCancer: Self.header(BundledDatasetText.breastCancer)
        case .fashionMNIST: FashionMNIST.classNames
        }
    }

    /// The class names of a scikit-learn CSV's header `rows,features,class names…`.
    static func header(_ text: String) -> [String] {
        text.prefix { $0 != "\n" }.split(separator: ",").dropFirst(2).map(String.init)
    }

    /// The official held-out test set of a data set that has one (Fashion-MNIST), nil otherwise.
    /// - Throws: as ``load()``.
    public func loadTest() throws -> Contents? {
        self == .fashionMNIST ? try FashionMNIST.load(.test) : nil
    }

    /// scikit-learn's CSV layout: a header `rows,features,class names…`, then rows of features and a label.
    static func parseCSV(_ text: String) -> Contents {
        let lines = text.split(separator: "\n")
        let header = lines[0].split(separator: ",")
        let d = Int(header[1])!
        var values: [Double] = []
        var labels: [Int] = []
        for line in lines.dropFirst() {
            let fields = line.split(separator: ",")
            values.append(contentsOf: fields[0..<d].map { Double($0)! })
            labels.append(Int(fields[d])!)
        }
        return Contents(features: Matrix(rows: labels.count, columns: d, values: values), labels: labels,
                        imageShape: nil, levels: nil, classNames: Self.header(text))
    }
}
