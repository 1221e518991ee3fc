/// Places equally sized panels in a grid below a figure title and an optional legend row.
struct PanelGridLayout {
    let columns: Int
    let rows: Int
    let panelWidth: Double
    let panelHeight: Double
    let headerHeight: Double
    static let padding = 10.0

    init(count: Int, columns: Int, panelWidth: Double, panelHeight: Double, hasTitle: Bool, hasLegend: Bool) {
        self.columns = max(1, columns)
        rows = count == 0 ? 0 : (count + self.columns - 1) / self.columns
        self.panelWidth = panelWidth
        self.panelHeight = panelHeight
        headerHeight = (hasTitle ? PlotTheme.figureTitleHeight : Self.padding) + (hasLegend ? 24 : 0)
    }

    var width: Double { Double(columns) * panelWidth + 2 * Self.padding }
    var height: Double { headerHeight + Double(rows) * panelHeight + Self.padding }
    /// Centre line of the legend row.
    var legendCenterY: Double { headerHeight - 14 }

    /// The outer rectangle of panel `index` (row-major order).
    func rect(_ index: Int) -> PixelRect {
        PixelRect(x: Self.padding + Double(index % columns) * panelWidth,
                  y: headerHeight + Double(index / columns) * panelHeight,
                  width: panelWidth, height: panelHeight)
    }
}

extension Plots {
    /// Several scatter panels in one SVG, laid out row by row in `columns` columns under the figure `title`.
    ///
    /// Each panel is `panelWidth` × `panelHeight` pixels including its margins, axes and title. When any
    /// panel holds two or more series, a legend row listing every distinct series name (with its colour, in
    /// order of first appearance) is drawn under the title. An empty `panels` array gives a valid SVG that
    /// only holds the title; `columns` below 1 counts as 1.
    public static func panelGrid(
        panels: [ScatterPanelSpec], columns: Int, title: String, panelWidth: Double = 340, panelHeight: Double = 320
    ) -> String {
        var entries: [LegendEntry] = []
        if panels.contains(where: { $0.series.count > 1 }) {
            for series in panels.flatMap(\.series) where !entries.contains(where: { $0.name == series.name }) {
                entries.append(LegendEntry(name: series.name, color: series.color, marker: .dot))
            }
        }
        let layout = PanelGridLayout(count: panels.count, columns: columns, panelWidth: panelWidth,
                                     panelHeight: panelHeight, hasTitle: !title.isEmpty, hasLegend: !entries.isEmpty)
        var doc = SVGDocument(width: layout.width, height: layout.height)
        PlotTheme.drawFigureTitle(&doc, title: title, width: layout.width)
        Legend.drawRow(&doc, entries: entries, centerX: layout.width / 2, centerY: layout.legendCenterY)
        // One common left margin, so that the plot areas of a column line up.
        let leftMargin = panels.enumerated().map { index, panel in
            AxesRenderer.requiredLeftMargin(outer: layout.rect(index), yDomain: panel.resolvedLimits.y,
                                            title: panel.title, xLabel: panel.xLabel, yLabel: panel.yLabel)
        }.max() ?? 0
        for (index, panel) in panels.enumerated() {
            doc.group(attributes: [("class", "panel")]) { doc in
                ScatterPanelRenderer.draw(&doc, panel: panel, outer: layout.rect(index), leftMargin: leftMargin)
            }
        }
        return doc.render()
    }
}
