/// A tiny, append-only SVG builder.
///
/// Coordinates are pixels in a `viewBox` of `0 0 width height` (origin at the top left, y pointing down).
/// Numbers are written with at most two decimals (see ``SVGFormat/number(_:decimals:)``) and every text or
/// attribute value is XML-escaped, so ``render()`` always yields a well-formed, deterministic document.
/// Text inherits a 12 px sans-serif font from the root element.
public struct SVGDocument: Sendable {
    /// Width of the canvas in pixels (also the `viewBox` width).
    public let width: Double
    /// Height of the canvas in pixels (also the `viewBox` height).
    public let height: Double
    private var body: String = ""
    private var defs: String = ""
    private var nextID = 0

    /// Creates an empty canvas of `width` × `height` pixels, filled with `background` (a CSS colour such as
    /// `"#ffffff"`) unless it is `nil`.
    public init(width: Double, height: Double, background: String? = "#ffffff") {
        self.width = max(width, 1)
        self.height = max(height, 1)
        if let background {
            rect(x: 0, y: 0, width: self.width, height: self.height, fill: background)
        }
    }

    private static func n(_ value: Double) -> String { SVGFormat.number(value) }

    private static func attributes(_ pairs: [(String, String?)]) -> String {
        var result = ""
        for (name, value) in pairs {
            guard let value else { continue }
            result += " \(name)=\"\(SVGFormat.escapeXML(value))\""
        }
        return result
    }

    /// Appends a raw, already well-formed SVG fragment. The caller is responsible for escaping.
    public mutating func raw(_ fragment: String) {
        body += fragment
    }

    /// Draws an axis-aligned rectangle with its top-left corner at (`x`, `y`). Negative sizes draw nothing.
    /// `fill`/`stroke` are CSS colours (`nil` leaves the attribute out, `"none"` disables painting);
    /// `cssClass` sets the `class` attribute (used to tag semantic groups of shapes).
    public mutating func rect(
        x: Double, y: Double, width: Double, height: Double, fill: String? = nil, stroke: String? = nil,
        strokeWidth: Double? = nil, opacity: Double? = nil, cssClass: String? = nil
    ) {
        guard width >= 0, height >= 0 else { return }
        body += "<rect" + Self.attributes([
            ("class", cssClass), ("x", Self.n(x)), ("y", Self.n(y)), ("width", Self.n(width)), ("height", Self.n(height)),
            ("fill", fill), ("stroke", stroke), ("stroke-width", strokeWidth.map(Self.n)), ("opacity", opacity.map(Self.n)),
        ]) + "/>\n"
    }

    /// Draws a straight line from (`x1`, `y1`) to (`x2`, `y2`); `dash` is an SVG `stroke-dasharray` such as `"4 3"`.
    public mutating func line(
        x1: Double, y1: Double, x2: Double, y2: Double, stroke: String = "#000000", strokeWidth: Double = 1,
        opacity: Double? = nil, dash: String? = nil, cssClass: String? = nil
    ) {
        body += "<line" + Self.attributes([
            ("class", cssClass), ("x1", Self.n(x1)), ("y1", Self.n(y1)), ("x2", Self.n(x2)), ("y2", Self.n(y2)),
            ("stroke", stroke), ("stroke-width", Self.n(strokeWidth)), ("opacity", opacity.map(Self.n)),
            ("stroke-dasharray", dash),
        ]) + "/>\n"
    }

    /// Draws a circle of radius `r` centred at (`cx`, `cy`).
    public mutating func circle(
        cx: Double, cy: Double, r: Double, fill: String = "#000000", stroke: String? = nil, strokeWidth: Double? = nil,
        opacity: Double? = nil, cssClass: String? = nil
    ) {
        body += "<circle" + Self.attributes([
            ("class", cssClass), ("cx", Self.n(cx)), ("cy", Self.n(cy)), ("r", Self.n(r)), ("fill", fill),
            ("stroke", stroke), ("stroke-width", strokeWidth.map(Self.n)), ("opacity", opacity.map(Self.n)),
        ]) + "/>\n"
    }

    /// Draws an open polyline through `points` (pixel coordinates, in order). Fewer than two points draw nothing.
    public mutating func polyline(
        _ points: Points2D, stroke: String = "#000000", strokeWidth: Double = 1.5, opacity: Double? = nil,
        dash: String? = nil, cssClass: String? = nil
    ) {
        guard points.count >= 2 else { return }
        var list = ""
        list.reserveCapacity(points.count * 14)
        for index in 0..<points.count {
            if index > 0 { list += " " }
            list += Self.n(points.xs[index]) + "," + Self.n(points.ys[index])
        }
        body += "<polyline" + Self.attributes([
            ("class", cssClass), ("points", list), ("fill", "none"), ("stroke", stroke),
            ("stroke-width", Self.n(strokeWidth)), ("stroke-linejoin", "round"), ("stroke-linecap", "round"),
            ("opacity", opacity.map(Self.n)), ("stroke-dasharray", dash),
        ]) + "/>\n"
    }

    /// Draws an SVG path with path data `d` (e.g. `"M10 10h0M20 5h0"`). With `lineCap: "round"` and a
    /// zero-length `h0` segment per point, this draws one round dot of diameter `strokeWidth` per point,
    /// which is far smaller than one `<circle>` per point. `opacity` is applied as `stroke-opacity`/`fill-opacity`.
    public mutating func path(
        _ d: String, fill: String = "none", stroke: String? = nil, strokeWidth: Double? = nil,
        opacity: Double? = nil, lineCap: String? = nil, cssClass: String? = nil
    ) {
        let strokeOpacity = stroke == nil ? nil : opacity.map(Self.n)
        let fillOpacity = fill == "none" ? nil : opacity.map(Self.n)
        body += "<path" + Self.attributes([
            ("class", cssClass), ("d", d), ("fill", fill), ("fill-opacity", fillOpacity), ("stroke", stroke),
            ("stroke-width", strokeWidth.map(Self.n)), ("stroke-opacity", strokeOpacity), ("stroke-linecap", lineCap),
        ]) + "/>\n"
    }

    /// Horizontal alignment of a text element relative to its anchor point.
    public enum TextAnchor: String, Sendable {
        /// The text starts at the anchor point.
        case start
        /// The text is centred on the anchor point.
        case middle
        /// The text ends at the anchor point.
        case end
    }

    /// Writes `text` (escaped) with its baseline at `y`. `rotation` is in degrees around (`x`, `y`)
    /// (e.g. `-90` for a vertical y-axis label). `size` defaults to the document's 12 px.
    public mutating func text(
        _ text: String, x: Double, y: Double, anchor: TextAnchor = .start, size: Double? = nil,
        weight: String? = nil, fill: String? = nil, rotation: Double? = nil, cssClass: String? = nil
    ) {
        let transform = rotation.map { "rotate(\(Self.n($0)) \(Self.n(x)) \(Self.n(y)))" }
        body += "<text" + Self.attributes([
            ("class", cssClass), ("x", Self.n(x)), ("y", Self.n(y)),
            ("text-anchor", anchor == .start ? nil : anchor.rawValue), ("font-size", size.map(Self.n)),
            ("font-weight", weight), ("fill", fill), ("transform", transform),
        ]) + ">" + SVGFormat.escapeXML(text) + "</text>\n"
    }

    /// Wraps the shapes drawn by `content` in a `<g>` element. `attributes` are written in the given order
    /// (values are escaped), e.g. `[("class", "points"), ("clip-path", "url(#clip-0)")]`.
    public mutating func group(attributes: [(String, String)] = [], _ content: (inout SVGDocument) -> Void) {
        body += "<g" + Self.attributes(attributes.map { ($0.0, Optional($0.1)) }) + ">\n"
        content(&self)
        body += "</g>\n"
    }

    /// Defines a rectangular clip path and returns its id (`"clip-<k>"`, numbered in creation order);
    /// use it as `("clip-path", "url(#id)")` on a ``group(attributes:_:)``.
    public mutating func clipRect(x: Double, y: Double, width: Double, height: Double) -> String {
        let id = "clip-\(nextID)"
        nextID += 1
        defs += "<clipPath id=\"\(id)\"><rect x=\"\(Self.n(x))\" y=\"\(Self.n(y))\" width=\"\(Self.n(max(width, 0)))\" height=\"\(Self.n(max(height, 0)))\"/></clipPath>\n"
        return id
    }

    /// Defines a linear gradient through `stops` (offsets in 0…1, CSS colours) and returns its id
    /// (`"gradient-<k>"`). `vertical: true` runs from the bottom (offset 0) to the top (offset 1);
    /// otherwise from left to right. Use it as `fill: "url(#id)"`.
    public mutating func linearGradient(stops: [(offset: Double, color: String)], vertical: Bool) -> String {
        let id = "gradient-\(nextID)"
        nextID += 1
        let direction = vertical ? "x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\"" : "x1=\"0\" y1=\"0\" x2=\"1\" y2=\"0\""
        defs += "<linearGradient id=\"\(id)\" \(direction)>"
        for stop in stops {
            defs += "<stop offset=\"\(SVGFormat.number(min(max(stop.offset, 0), 1), decimals: 4))\" stop-color=\"\(SVGFormat.escapeXML(stop.color))\"/>"
        }
        defs += "</linearGradient>\n"
        return id
    }

    /// A fresh element id `"<prefix>-<k>"` (numbered with the clip paths and gradients), e.g. for a group
    /// that ``use(_:)`` draws again.
    public mutating func makeID(_ prefix: String) -> String {
        let id = "\(prefix)-\(nextID)"
        nextID += 1
        return id
    }

    /// Defines a Gaussian blur filter with standard deviations `standardDeviationX`, `standardDeviationY`
    /// (in the user units of the element it is applied to; pixels for an untransformed group), blending in
    /// sRGB like an image interpolation, and returns its id (`"filter-<k>"`). Use it as
    /// `("filter", "url(#id)")` on a ``group(attributes:_:)``; the default filter region (the element's
    /// bounding box widened by 10 % on each side) applies, so clip the group when the blur must not spill.
    public mutating func gaussianBlurFilter(standardDeviationX: Double, standardDeviationY: Double) -> String {
        let id = makeID("filter")
        let deviations = SVGFormat.number(max(standardDeviationX, 0), decimals: 3) + " "
            + SVGFormat.number(max(standardDeviationY, 0), decimals: 3)
        defs += "<filter id=\"\(id)\" color-interpolation-filters=\"sRGB\"><feGaussianBlur stdDeviation=\"\(deviations)\"/></filter>\n"
        return id
    }

    /// Draws the element with id `id` again (an SVG 2 `<use href="#id">`), with its own transform.
    public mutating func use(_ id: String, cssClass: String? = nil) {
        body += "<use" + Self.attributes([("class", cssClass), ("href", "#" + id)]) + "/>\n"
    }

    /// The complete SVG document: XML declaration, root `<svg>` with `width`, `height` and `viewBox`,
    /// the `<defs>` (clip paths, gradients) and all shapes in drawing order.
    public func render() -> String {
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"\(Self.n(width))\" height=\"\(Self.n(height))\" "
        out += "viewBox=\"0 0 \(Self.n(width)) \(Self.n(height))\" font-family=\"\(PlotTheme.fontFamily)\" font-size=\"\(Self.n(PlotTheme.fontSize))\">\n"
        if !defs.isEmpty { out += "<defs>\n" + defs + "</defs>\n" }
        out += body
        out += "</svg>\n"
        return out
    }
}
