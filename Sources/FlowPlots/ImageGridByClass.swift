extension ImageGridSpec {
    /// Labelled images arranged by class: one column per distinct label (ascending), headed `"class <label>"`,
    /// holding the first `rows` images of that class from top to bottom (in the order of `labels`). A class
    /// with fewer images leaves black squares at the bottom of its column.
    ///
    /// Give `rows` the row count of the grid shown beside it (e.g. the six temperature rows of generated
    /// samples), so that both blocks have the same height in ``Plots/imageGrids(_:title:pixelSize:)``.
    /// - Parameters:
    ///   - labels: the class of each image, by index.
    ///   - image: the flat row-major `[imageHeight, imageWidth]` image at an index of `labels`; called only for
    ///     the images shown (at most `rows` per class).
    public static func byClass(
        title: String = "", labels: [Int], rows: Int, imageHeight: Int, imageWidth: Int,
        valueRange: ClosedRange<Double> = 0...1, image: (Int) -> [Double]
    ) -> ImageGridSpec {
        let classes = Array(Set(labels)).sorted()
        let rowCount = max(rows, 0)
        var members = [[Int]](repeating: [], count: classes.count)
        let column = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($0.element, $0.offset) })
        for (index, label) in labels.enumerated() {
            guard let c = column[label], members[c].count < rowCount else { continue }
            members[c].append(index)
        }
        var images: [[Double]] = []
        images.reserveCapacity(rowCount * classes.count)
        for row in 0..<rowCount {
            for c in classes.indices {
                images.append(row < members[c].count ? image(members[c][row]) : [])
            }
        }
        return ImageGridSpec(title: title, images: images, imageHeight: imageHeight, imageWidth: imageWidth,
                             rows: rowCount, columns: classes.count, columnLabels: classes.map { "class \($0)" },
                             valueRange: valueRange)
    }
}
