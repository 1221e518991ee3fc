/// Draws the parts every 2-D panel shares: plot background, light grid, frame, outward ticks, tick labels,
/// axis labels and the panel title. Data is drawn between ``drawBackground`` and ``drawFrame``.
struct AxesRenderer {
    let area: PixelRect
    let xTicks: NiceTicks
    let yTicks: NiceTicks
    let xScale: LinearScale
    let yScale: LinearScale

    /// Lays out a panel inside `outer`: margins for the title, the tick labels and the axis labels, and
    /// `rightExtra` pixels on the right (e.g. for a colour bar). Ticks are thinned until their labels fit.
    /// `leftMargin` (pixels from `outer.x` to the plot area) is raised to what the y tick labels need; panels of
    /// a grid pass their common maximum (see ``requiredLeftMargin(outer:yDomain:title:xLabel:yLabel:)``) so that
    /// their plot areas line up.
    init(
        outer: PixelRect, xDomain: ClosedRange<Double>, yDomain: ClosedRange<Double>, title: String,
        xLabel: String, yLabel: String, rightExtra: Double = 0, xMinimumStep: Double = 0, leftMargin: Double = 0
    ) {
        let (top, bottom) = Self.verticalBounds(outer: outer, title: title, xLabel: xLabel)
        let yTicks = Self.fittedTicks(yDomain, length: bottom - top, minimumStep: 0, labelSize: { _ in PlotTheme.fontSize })
        let left = outer.x + max(leftMargin, Self.leftMargin(yTicks: yTicks, yLabel: yLabel))
        let right = outer.maxX - 16 - rightExtra
        let area = PixelRect(x: left, y: top, width: max(right - left, 10), height: bottom - top)
        self.area = area
        self.xTicks = Self.fittedTicks(xDomain, length: area.width, minimumStep: xMinimumStep,
                                       labelSize: { PlotTheme.textWidth($0) })
        self.yTicks = yTicks
        let (xLow, xHigh) = NiceTicks.sanitized(xDomain)
        let (yLow, yHigh) = NiceTicks.sanitized(yDomain)
        xScale = LinearScale(domain: xLow...xHigh, pixelStart: area.x, pixelEnd: area.maxX)
        yScale = LinearScale(domain: yLow...yHigh, pixelStart: area.maxY, pixelEnd: area.y)
    }

    /// The left margin a panel with these inputs needs for its y tick labels and y label.
    static func requiredLeftMargin(
        outer: PixelRect, yDomain: ClosedRange<Double>, title: String, xLabel: String, yLabel: String
    ) -> Double {
        let (top, bottom) = verticalBounds(outer: outer, title: title, xLabel: xLabel)
        let yTicks = fittedTicks(yDomain, length: bottom - top, minimumStep: 0, labelSize: { _ in PlotTheme.fontSize })
        return leftMargin(yTicks: yTicks, yLabel: yLabel)
    }

    private static func verticalBounds(outer: PixelRect, title: String, xLabel: String) -> (Double, Double) {
        let top = outer.y + (title.isEmpty ? 10 : 28)
        let bottom = outer.maxY - (12 + (xLabel.isEmpty ? 0 : 20) + 15 + PlotTheme.tickLength)
        return (top, max(bottom, top + 10))
    }

    private static func leftMargin(yTicks: NiceTicks, yLabel: String) -> Double {
        let widest = yTicks.labels.map { PlotTheme.textWidth($0) }.max() ?? 0
        return 8 + (yLabel.isEmpty ? 0 : 20) + widest + PlotTheme.tickLength + 5
    }

    /// Nice ticks inside `domain` whose labels (size along the axis given by `labelSize`) do not collide.
    static func fittedTicks(
        _ domain: ClosedRange<Double>, length: Double, minimumStep: Double, labelSize: (String) -> Double
    ) -> NiceTicks {
        let (low, high) = NiceTicks.sanitized(domain)
        var target = 7
        while true {
            let ticks = NiceTicks.within(low...high, targetCount: target, minimumStep: minimumStep)
            let widest = ticks.labels.map(labelSize).max() ?? 0
            let spacing = length * ticks.step / (high - low)
            if target <= 2 || spacing >= widest + 14 { return ticks }
            target -= 1
        }
    }

    /// White plot background and light grid lines at every tick.
    func drawBackground(_ doc: inout SVGDocument) {
        doc.rect(x: area.x, y: area.y, width: area.width, height: area.height, fill: "#ffffff")
        doc.group(attributes: [("class", "grid"), ("stroke", PlotTheme.gridColor), ("stroke-width", "1")]) { doc in
            for value in xTicks.values {
                let x = xScale(value)
                guard x > area.x + 0.5, x < area.maxX - 0.5 else { continue }
                doc.raw("<line x1=\"\(SVGFormat.number(x))\" y1=\"\(SVGFormat.number(area.y))\" x2=\"\(SVGFormat.number(x))\" y2=\"\(SVGFormat.number(area.maxY))\"/>\n")
            }
            for value in yTicks.values {
                let y = yScale(value)
                guard y > area.y + 0.5, y < area.maxY - 0.5 else { continue }
                doc.raw("<line x1=\"\(SVGFormat.number(area.x))\" y1=\"\(SVGFormat.number(y))\" x2=\"\(SVGFormat.number(area.maxX))\" y2=\"\(SVGFormat.number(y))\"/>\n")
            }
        }
    }

    /// Runs `content` inside a group clipped to the plot area.
    func clipped(_ doc: inout SVGDocument, cssClass: String, _ content: (inout SVGDocument) -> Void) {
        let clip = doc.clipRect(x: area.x, y: area.y, width: area.width, height: area.height)
        doc.group(attributes: [("class", cssClass), ("clip-path", "url(#\(clip))")], content)
    }

    /// The note a plot area shows when it has points but none with finite coordinates.
    static let nothingToPlot = "nothing to plot: every value is \u{00B1}\u{221E} or not a number"

    /// `text` centred in the plot area in gray (e.g. ``nothingToPlot``), so that an empty panel says why.
    func drawNote(_ doc: inout SVGDocument, _ text: String) {
        doc.text(text, x: area.midX, y: area.midY + 4, anchor: .middle, fill: PlotTheme.tickLabelColor, cssClass: "note")
    }

    /// Frame, ticks, tick labels, axis labels and title (drawn on top of the data).
    func drawFrame(_ doc: inout SVGDocument, title: String, xLabel: String, yLabel: String) {
        let tick = PlotTheme.tickLength
        doc.rect(x: area.x, y: area.y, width: area.width, height: area.height, fill: "none",
                 stroke: PlotTheme.axisColor, strokeWidth: 1)
        doc.group(attributes: [("class", "ticks"), ("stroke", PlotTheme.axisColor), ("stroke-width", "1")]) { doc in
            for value in xTicks.values {
                let x = SVGFormat.number(xScale(value))
                doc.raw("<line x1=\"\(x)\" y1=\"\(SVGFormat.number(area.maxY))\" x2=\"\(x)\" y2=\"\(SVGFormat.number(area.maxY + tick))\"/>\n")
            }
            for value in yTicks.values {
                let y = SVGFormat.number(yScale(value))
                doc.raw("<line x1=\"\(SVGFormat.number(area.x - tick))\" y1=\"\(y)\" x2=\"\(SVGFormat.number(area.x))\" y2=\"\(y)\"/>\n")
            }
        }
        doc.group(attributes: [("class", "tick-labels"), ("fill", PlotTheme.tickLabelColor)]) { doc in
            for value in xTicks.values {
                doc.text(xTicks.label(for: value), x: xScale(value), y: area.maxY + tick + 13, anchor: .middle,
                         cssClass: "tick-label")
            }
            for value in yTicks.values {
                doc.text(yTicks.label(for: value), x: area.x - tick - 3, y: yScale(value) + 4, anchor: .end,
                         cssClass: "tick-label")
            }
        }
        if !xLabel.isEmpty {
            doc.text(xLabel, x: area.midX, y: area.maxY + tick + 31, anchor: .middle, fill: PlotTheme.textColor,
                     cssClass: "axis-label")
        }
        if !yLabel.isEmpty {
            let widest = yTicks.labels.map { PlotTheme.textWidth($0) }.max() ?? 0
            let x = area.x - tick - 5 - widest - 8
            doc.text(yLabel, x: x, y: area.midY, anchor: .middle, fill: PlotTheme.textColor, rotation: -90,
                     cssClass: "axis-label")
        }
        if !title.isEmpty {
            doc.text(title, x: area.midX, y: area.y - 9, anchor: .middle, size: PlotTheme.panelTitleSize,
                     weight: "bold", fill: PlotTheme.textColor, cssClass: "panel-title")
        }
    }
}
