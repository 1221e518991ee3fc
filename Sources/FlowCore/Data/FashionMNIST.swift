import Foundation

/// Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017; MIT licence): 70,000 grey 28×28 images of 10 kinds of clothing,
/// 60,000 for training and 10,000 for testing, read from the four IDX files Debian's package `dataset-fashion-mnist`
/// installs under `/usr/share/datasets/fashion-mnist/` (`train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`,
/// `t10k-…`). Nothing is downloaded; `FLOW_FASHION_MNIST_DIR` points elsewhere.
public enum FashionMNIST {
    /// The official split.
    public enum Split: String, Sendable {
        /// The 60,000 training images (`train-*`).
        case train
        /// The 10,000 test images (`t10k-*`).
        case test
    }

    /// The class names, label 0 … 9.
    public static let classNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

    /// The directory of the IDX files: `FLOW_FASHION_MNIST_DIR`, else Debian's.
    public static var directory: String {
        ProcessInfo.processInfo.environment["FLOW_FASHION_MNIST_DIR"] ?? "/usr/share/datasets/fashion-mnist"
    }

    /// The images `[N, 784]` (0 … 255) and labels of `split`.
    /// - Throws: ``FlowIOError`` naming the missing or malformed file (and how to install the package).
    public static func load(_ split: Split) throws -> BundledDataset.Contents {
        let prefix = split == .train ? "train" : "t10k"
        let images = "\(directory)/\(prefix)-images-idx3-ubyte.gz", labels = "\(directory)/\(prefix)-labels-idx1-ubyte.gz"
        for file in [images, labels] where !FileManager.default.fileExists(atPath: file) {
            throw FlowIOError(path: file, message: "not found: Fashion-MNIST comes from Debian's package dataset-fashion-mnist "
                + "(apt-get install dataset-fashion-mnist), or set FLOW_FASHION_MNIST_DIR to a directory with its four IDX files")
        }
        let (rows, shape, l) = try IDXReader.readLabeledImages(images: images, labels: labels)
        guard shape == [28, 28] else { throw FlowIOError(path: images, message: "holds \(shape[0])×\(shape[1]) images; Fashion-MNIST's are 28×28") }
        if let bad = l.firstIndex(where: { !(0...9).contains($0) }) {
            throw FlowIOError(path: labels, message: "label \(bad + 1) is \(l[bad]); Fashion-MNIST's are 0 … 9")
        }
        return BundledDataset.Contents(features: rows, labels: l, imageShape: shape, levels: 256, classNames: classNames)
    }
}
