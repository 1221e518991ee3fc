/// An sRGB colour with 8-bit channels.
public struct RGBColor: Sendable, Equatable, Hashable {
    /// Red channel, 0…255.
    public var red: UInt8
    /// Green channel, 0…255.
    public var green: UInt8
    /// Blue channel, 0…255.
    public var blue: UInt8

    /// Creates a colour from its three channels.
    public init(red: UInt8, green: UInt8, blue: UInt8) {
        self.red = red
        self.green = green
        self.blue = blue
    }

    /// Creates a colour from a 24-bit `0xRRGGBB` value.
    public init(rgb: UInt32) {
        self.init(red: UInt8((rgb >> 16) & 0xff), green: UInt8((rgb >> 8) & 0xff), blue: UInt8(rgb & 0xff))
    }

    /// The CSS hex form, lower case: `"#440154"`.
    public var hex: String {
        let digits = Array("0123456789abcdef")
        var result = "#"
        for channel in [red, green, blue] {
            result.append(digits[Int(channel >> 4)])
            result.append(digits[Int(channel & 0x0f)])
        }
        return result
    }
}

/// Colour maps for continuous values and a categorical palette for series.
public enum ColorMap {
    /// 52 anchor colours of matplotlib's viridis (CC0), entries 0, 5, 10, …, 255 of its 256-entry table,
    /// i.e. evenly spaced at t = k/51. ``viridis(_:)`` interpolates linearly between them.
    public static let viridisAnchors: [RGBColor] = [
        0x440154, 0x46085c, 0x471063, 0x481769, 0x481d6f, 0x482475, 0x472a7a, 0x46307e,
        0x453781, 0x433d84, 0x414287, 0x3f4889, 0x3d4e8a, 0x3a538b, 0x38598c, 0x355e8d,
        0x33638d, 0x31688e, 0x2e6d8e, 0x2c718e, 0x2a768e, 0x297b8e, 0x27808e, 0x25848e,
        0x23898e, 0x218e8d, 0x20928c, 0x1f978b, 0x1e9c89, 0x1fa188, 0x21a585, 0x24aa83,
        0x28ae80, 0x2eb37c, 0x35b779, 0x3dbc74, 0x46c06f, 0x50c46a, 0x5ac864, 0x65cb5e,
        0x70cf57, 0x7cd250, 0x89d548, 0x95d840, 0xa2da37, 0xb0dd2f, 0xbddf26, 0xcae11f,
        0xd8e219, 0xe5e419, 0xf1e51d, 0xfde725,
    ].map(RGBColor.init(rgb:))

    /// The viridis colour at `t` ∈ [0, 1] (clamped; NaN counts as 0): dark purple `#440154` at 0,
    /// teal near 0.5, yellow `#fde725` at 1.
    public static func viridis(_ t: Double) -> RGBColor {
        let anchors = viridisAnchors
        let clamped = t.isNaN ? 0 : min(max(t, 0), 1)
        let position = clamped * Double(anchors.count - 1)
        let index = min(Int(position), anchors.count - 2)
        let weight = position - Double(index)
        let a = anchors[index], b = anchors[index + 1]
        func mix(_ x: UInt8, _ y: UInt8) -> UInt8 {
            UInt8((Double(x) + (Double(y) - Double(x)) * weight).rounded())
        }
        return RGBColor(red: mix(a.red, b.red), green: mix(a.green, b.green), blue: mix(a.blue, b.blue))
    }

    /// A gray level for `t` ∈ [0, 1] (clamped; NaN counts as 0): black at 0, white at 1, 256 levels.
    public static func gray(_ t: Double) -> RGBColor {
        let level = UInt8(((t.isNaN ? 0 : min(max(t, 0), 1)) * 255).rounded())
        return RGBColor(red: level, green: level, blue: level)
    }

    /// Ten well-separated colours for series (matplotlib's "tab10"): blue, orange, green, red, purple, …
    /// Series `k` uses `categorical[k % 10]` unless it has its own colour.
    public static let categorical: [String] = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
        "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    ]
}
