import Testing
import FlowPlots

@Suite("Image grids")
struct ImageGridTests {
    @Test("One black square per image and one rect per run of equal non-black gray")
    func pixels() {
        let images: [[Double]] = [[0, 1, 0.5, 0], [1, 1, 0, 0]]  // two 2 × 2 images
        let svg = Plots.imageGrid(images: images, imageHeight: 2, imageWidth: 2, rows: 1, columns: 2, title: "img")
        let parsed = parseSVG(svg)
        #expect(parsed.wellFormed)
        let rects = parsed.elements(named: "rect", in: "image")
        #expect(rects.filter { $0.attributes["class"] == "image-background" }.count == 2)
        let pixels = rects.filter { $0.attributes["class"] == nil }
        #expect(pixels.map { $0.attributes["fill"] ?? "" } == ["#ffffff", "#808080", "#ffffff"])
        // 8 × 8 pixels per image side of 2 ⇒ pixel size 36; the merged white run of image 2 is two pixels wide.
        #expect(pixels.map { $0.attributes["width"] ?? "" } == ["36", "36", "72"])
    }

    @Test("Row labels are drawn (escaped) once per row")
    func rowLabels() {
        let images = Array(repeating: [Double](repeating: 0.5, count: 4), count: 6)
        let labels = ["τ = 0.25", "τ < 1 & more"]
        let svg = Plots.imageGrid(images: images, imageHeight: 2, imageWidth: 2, rows: 2, columns: 3,
                                  rowLabels: labels, title: "Temperatures")
        let parsed = parseSVG(svg)
        #expect(parsed.wellFormed)
        #expect(parsed.texts(class: "row-label") == labels)
        #expect(svg.contains("τ &lt; 1 &amp; more"))
    }

    @Test("Values are clipped to the range; extra images are ignored and missing ones leave empty slots")
    func clippingAndCounts() {
        let images: [[Double]] = [[20, -3, .nan, 16], [8, 8, 8, 8], [1, 1, 1, 1]]
        let svg = Plots.imageGrid(images: images, imageHeight: 2, imageWidth: 2, rows: 1, columns: 2,
                                  title: "c", valueRange: 0...16)
        let parsed = parseSVG(svg)
        #expect(parsed.elements(named: "rect", in: "image").filter { $0.attributes["class"] == "image-background" }.count == 2)
        let fills = parsed.elements(named: "rect", in: "image").filter { $0.attributes["class"] == nil }.map { $0.attributes["fill"] ?? "" }
        #expect(fills == ["#ffffff", "#ffffff", "#808080", "#808080"])
        #expect(!containsNonFinite(svg))
        let sparse = parseSVG(Plots.imageGrid(images: [[1]], imageHeight: 1, imageWidth: 1, rows: 3, columns: 3, title: "s"))
        #expect(sparse.elements(named: "rect", in: "image").filter { $0.attributes["class"] == "image-background" }.count == 1)
    }

    @Test("Two grids side by side, each with its own title")
    func sideBySide() {
        let image = [Double](repeating: 0.25, count: 64)
        let generated = ImageGridSpec(title: "Generated", images: Array(repeating: image, count: 4), imageHeight: 8,
                                      imageWidth: 8, rows: 2, columns: 2)
        let real = ImageGridSpec(title: "Real", images: Array(repeating: image, count: 6), imageHeight: 8, imageWidth: 8,
                                 rows: 2, columns: 3, rowLabels: ["a", "b"])
        let svg = Plots.imageGrids([generated, real], title: "Digits")
        let parsed = parseSVG(svg)
        #expect(parsed.wellFormed)
        #expect(parsed.texts(class: "grid-title") == ["Generated", "Real"])
        #expect(parsed.texts(class: "row-label") == ["a", "b"])
        #expect(parsed.elements(named: "g").filter { $0.attributes["class"] == "image" }.count == 10)
        #expect(svg == Plots.imageGrids([generated, real], title: "Digits"))
        #expect(parseSVG(Plots.imageGrids([], title: "")).wellFormed)
    }
}
