#if canImport(FoundationXML)
import FoundationXML
#endif
import Foundation
import FlowPlots

/// One parsed element: its name, attributes, the `class` values of itself and its ancestors, and its text.
struct ParsedElement {
    var name: String
    var attributes: [String: String]
    var classes: [String]
    var text: String

    func within(_ cssClass: String) -> Bool { classes.contains(cssClass) }
}

/// Result of parsing an SVG string with Foundation's XMLParser.
struct ParsedSVG {
    var wellFormed: Bool
    var error: String?
    var elements: [ParsedElement]

    func elements(named name: String, in cssClass: String? = nil) -> [ParsedElement] {
        elements.filter { $0.name == name && (cssClass.map($0.within) ?? true) }
    }

    func texts(class cssClass: String) -> [String] {
        elements.filter { $0.name == "text" && $0.attributes["class"] == cssClass }.map(\.text)
    }

    /// Number of scatter dots: one `M` command per point in the `d` of paths inside `class="points"` groups.
    func dotCount(in cssClass: String = "points") -> Int {
        elements(named: "path", in: cssClass).map { ($0.attributes["d"] ?? "").filter { $0 == "M" }.count }.reduce(0, +)
    }
}

private final class Collector: NSObject, XMLParserDelegate {
    var elements: [ParsedElement] = []
    var stack: [(index: Int, classes: [String])] = []

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
        var classes = stack.last?.classes ?? []
        if let own = attributeDict["class"] { classes.append(own) }
        elements.append(ParsedElement(name: elementName, attributes: attributeDict, classes: classes, text: ""))
        stack.append((elements.count - 1, classes))
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
        stack.removeLast()
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if let top = stack.last { elements[top.index].text += string }
    }
}

func parseSVG(_ svg: String) -> ParsedSVG {
    let parser = XMLParser(data: Data(svg.utf8))
    let collector = Collector()
    parser.delegate = collector
    let ok = parser.parse()
    return ParsedSVG(wellFormed: ok, error: parser.parserError.map { "\($0)" }, elements: collector.elements)
}

/// Evenly spaced points `(start + k, 2·(start + k))`, all inside robust limits computed from them.
func line(_ count: Int, start: Double = 0) -> Points2D {
    Points2D(xs: (0..<count).map { start + Double($0) }, ys: (0..<count).map { 2 * (start + Double($0)) })
}

/// True if the document contains a spelled-out non-finite number.
func containsNonFinite(_ svg: String) -> Bool {
    let lower = svg.lowercased()
    return lower.contains("nan") || lower.contains("inf")
}
