import Foundation

/// Deterministic number formatting and XML escaping used by every SVG writer in this module.
///
/// Nothing here depends on the locale, so output bytes are the same on every machine.
public enum SVGFormat {
    /// 10^`exponent`: exact in `Double` for 10⁰ … 10²² (and correctly rounded reciprocals); beyond that the
    /// nearest `Double` from `pow` (10³⁰⁹ and above is +∞).
    static func powerOfTen(_ exponent: Int) -> Double {
        guard abs(exponent) <= 22 else { return pow(10, Double(exponent)) }
        var result = 1.0
        for _ in 0..<abs(exponent) { result *= 10 }
        return exponent >= 0 ? result : 1 / result
    }

    /// Formats `value` rounded (half away from zero) to at most `decimals` fraction digits, with trailing
    /// zeros and a trailing point removed: `12.5`, `3`, `-0.25`. Negative zero prints as `0`.
    /// Non-finite values print as `0` (callers skip them before drawing). `decimals` is clamped to 0…9.
    public static func number(_ value: Double, decimals: Int = 2) -> String {
        digits(value, decimals: decimals, trimZeros: true, minus: "-")
    }

    /// Formats `value` with exactly `decimals` fraction digits (no trimming): `fixed(0.2, decimals: 1)` is `0.2`,
    /// `fixed(1, decimals: 1)` is `1.0`. Used for tick labels, where all labels of an axis share their decimals.
    /// `minus` is the sign written before negative values (e.g. `"-"` or the typographic `"\u{2212}"`).
    public static func fixed(_ value: Double, decimals: Int, minus: String = "-") -> String {
        digits(value, decimals: decimals, trimZeros: false, minus: minus)
    }

    private static func digits(_ value: Double, decimals: Int, trimZeros: Bool, minus: String) -> String {
        guard value.isFinite else { return "0" }
        let places = min(max(decimals, 0), 9)
        let scale = powerOfTen(places)
        // Clamp to keep the scaled value inside Int64; plot coordinates never come near this.
        let clamped = min(max(value, -1e9), 1e9)
        let scaled = (clamped * scale).rounded(.toNearestOrAwayFromZero)
        let magnitude = Int64(abs(scaled))
        let scaleInt = Int64(scale)
        let integerPart = magnitude / scaleInt
        var fraction = magnitude % scaleInt
        var result = (scaled < 0 && magnitude != 0) ? minus : ""
        result += String(integerPart)
        guard places > 0 else { return result }
        var fractionDigits = places
        if trimZeros {
            if fraction == 0 { return result }
            while fraction % 10 == 0 { fraction /= 10; fractionDigits -= 1 }
        }
        let text = String(fraction)
        result += "." + String(repeating: "0", count: fractionDigits - text.count) + text
        return result
    }

    /// Escapes `&`, `<`, `>`, `"` and `'` so that `text` can be used as XML character data or as an attribute
    /// value, and drops control characters that XML 1.0 forbids (everything below U+0020 except tab, LF, CR).
    public static func escapeXML(_ text: String) -> String {
        var result = ""
        result.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&apos;"
            case "\t", "\n", "\r": result.unicodeScalars.append(scalar)
            default:
                if scalar.value < 0x20 || scalar.value == 0xFFFE || scalar.value == 0xFFFF { continue }
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}
