import Testing
import FlowPlots

@Suite("Image grid layout: real images by class beside generated ones")
struct ImageGridLayoutTests {
    @Test("byClass: one column per class (ascending), the first images of each class down its column")
    func byClass() {
        let labels = [3, 1, 3, 2, 1, 3, 3, 1]
        var asked: [Int] = []
        let spec = ImageGridSpec.byClass(title: "Real", labels: labels, rows: 2, imageHeight: 1, imageWidth: 1) { index in
            asked.append(index)
            return [Double(index)]
        }
        #expect(spec.rows == 2 && spec.columns == 3)
        #expect(spec.columnLabels == ["class 1", "class 2", "class 3"])
        #expect(spec.rowLabels == nil)
        // Row 0: the first image of classes 1, 2, 3; row 1: the second ones (class 2 has none: an empty slot).
        #expect(spec.images == [[1], [3], [0], [4], [], [2]])
        #expect(asked.sorted() == [0, 1, 2, 3, 4])
    }

    @Test("Generated (6 temperature rows) beside real by class (6 rows): equal blocks and no empty band")
    func noEmptyBand() throws {
        let image = [Double](repeating: 8, count: 64)
        let generated = ImageGridSpec(title: "Generated", images: Array(repeating: image, count: 60), imageHeight: 8,
                                      imageWidth: 8, rows: 6, columns: 10, rowLabels: (0..<6).map { "τ = \($0)" },
                                      valueRange: 0...16)
        let labels = (0..<200).map { $0 % 10 }
        let real = ImageGridSpec.byClass(title: "Real", labels: labels, rows: generated.rows, imageHeight: 8, imageWidth: 8,
                                         valueRange: 0...16) { _ in image }
        let parsed = parseSVG(Plots.imageGrids([generated, real], title: "Samples"))
        #expect(parsed.wellFormed)
        let svgHeight = try #require(Double(parsed.elements(named: "svg").first?.attributes["height"] ?? ""))
        let backgrounds = parsed.elements(named: "rect", in: "image").filter { $0.attributes["class"] == "image-background" }
        #expect(backgrounds.count == 120)
        let tops = backgrounds.map { Double($0.attributes["y"] ?? "") ?? .nan }
        let bottoms = backgrounds.map { (Double($0.attributes["y"] ?? "") ?? .nan) + (Double($0.attributes["height"] ?? "") ?? .nan) }
        // Both blocks use the same six row positions, and the figure ends 16 px under the last row.
        #expect(Set(tops).count == 6)
        #expect(abs(svgHeight - ((bottoms.max() ?? 0) + 16)) < 0.01)
        // 34 (title) + 24 (grid titles) + 18 (column labels) + 6 rows of 72 px with 4 px gaps + 16 px margin.
        let expected: Double = 34 + 24 + 18 + 6 * 72 + 5 * 4 + 16
        #expect(svgHeight == expected)
        #expect(parsed.texts(class: "column-label") == (0..<10).map { "class \($0)" })
    }

    @Test("Column labels are centred over their columns, between the grid title and the first row")
    func columnLabelPositions() throws {
        let spec = ImageGridSpec(title: "T", images: Array(repeating: [1, 1, 1, 1], count: 3), imageHeight: 2, imageWidth: 2,
                                 rows: 1, columns: 3, columnLabels: ["a", "b", "c"])
        let parsed = parseSVG(Plots.imageGrids([spec], title: "Labels"))
        let labels = parsed.elements.filter { $0.name == "text" && $0.attributes["class"] == "column-label" }
        let backgrounds = parsed.elements(named: "rect", in: "image").filter { $0.attributes["class"] == "image-background" }
        #expect(labels.count == 3 && backgrounds.count == 3)
        for (label, image) in zip(labels, backgrounds) {
            let x = Double(image.attributes["x"] ?? "") ?? .nan, width = Double(image.attributes["width"] ?? "") ?? .nan
            let top = Double(image.attributes["y"] ?? "") ?? .nan
            #expect(abs((Double(label.attributes["x"] ?? "") ?? .nan) - (x + width / 2)) < 0.01)
            #expect(label.attributes["text-anchor"] == "middle")
            let baseline = Double(label.attributes["y"] ?? "") ?? .nan
            #expect(baseline < top && baseline > top - 18)
        }
        let gridTitle = try #require(parsed.elements.first { $0.attributes["class"] == "grid-title" })
        #expect((Double(gridTitle.attributes["y"] ?? "") ?? .infinity) < (Double(labels[0].attributes["y"] ?? "") ?? 0) - 12)
    }
}
