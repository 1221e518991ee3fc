import Foundation

/// Tick positions and labels for one axis, with steps of 1, 2 or 5 × 10ᵏ ("nice" round numbers).
///
/// Two flavours: ``loose(_:targetCount:)`` widens the range outwards to the nearest ticks (the domain starts
/// and ends on a tick), ``within(_:targetCount:minimumStep:)`` keeps the range and places ticks inside it.
/// Tick values are computed as integer multiples of the step, so `0.6` is exactly `0.6`, not `0.6000000000000001`.
public struct NiceTicks: Sendable, Equatable {
    /// The tick positions in data units, increasing.
    public let values: [Double]
    /// The distance between neighbouring ticks: 1, 2 or 5 × 10ᵏ.
    public let step: Double
    /// The data range the axis spans (for ``loose(_:targetCount:)`` this is first tick … last tick).
    public let domain: ClosedRange<Double>
    /// The number of fraction digits needed to print every tick exactly (0 for steps ≥ 1).
    public let decimals: Int
    /// `step` is `mantissa × 10^exponent`, mantissa 1, 2 or 5.
    private let mantissa: Int
    private let exponent: Int

    /// The tick labels, one per value, with ``decimals`` fraction digits and a typographic minus sign (U+2212);
    /// in scientific notation (`1.5e10`, `2e−12`) when a tick reaches 10⁹ in magnitude or the step needs more
    /// than 9 decimals.
    public var labels: [String] { values.map(label(for:)) }

    /// Formats `value` like the tick labels of this axis.
    public func label(for value: Double) -> String {
        let scientific = decimals > 9 || values.contains { abs($0) >= 1e9 }
        guard scientific, value.isFinite, abs(value / step) < 1e15 else {
            return SVGFormat.fixed(value, decimals: decimals, minus: "\u{2212}")
        }
        // value = digits × 10^power exactly, with every digit of the tick's multiple of the step.
        let multiple = Int((value / step).rounded()) * mantissa
        guard multiple != 0 else { return "0" }
        var digits = String(multiple.magnitude), power = exponent
        while digits.count > 1, digits.hasSuffix("0") { digits.removeLast(); power += 1 }
        power += digits.count - 1
        let sign = multiple < 0 ? "\u{2212}" : ""
        let head = String(digits.prefix(1)), tail = String(digits.dropFirst())
        return sign + head + (tail.isEmpty ? "" : "." + tail) + "e" + (power < 0 ? "\u{2212}" : "") + String(power.magnitude)
    }

    /// The smallest number of the form 1, 2 or 5 × 10ᵏ that is ≥ `rawStep` (up to a relative 1e-9).
    /// Non-finite or non-positive input gives 1.
    public static func niceStep(for rawStep: Double) -> Double {
        let (mantissa, exponent) = niceStepParts(for: rawStep)
        return value(index: 1, mantissa: mantissa, exponent: exponent)
    }

    /// Ticks covering `range`: the domain is widened to the nearest multiples of a nice step chosen so that
    /// there are about `targetCount` intervals (at most `targetCount + 2` ticks). For example `0…1` gives
    /// `0, 0.2, …, 1.0` and `−3.7…12.2` gives `−5, 0, 5, 10, 15` (domain `−5…15`).
    public static func loose(_ range: ClosedRange<Double>, targetCount: Int = 5) -> NiceTicks {
        let (low, high) = sanitized(range)
        let (mantissa, exponent) = niceStepParts(for: (high - low) / Double(max(targetCount, 1)))
        let unit = value(index: 1, mantissa: mantissa, exponent: exponent)
        let first = Int((low / unit + 1e-9).rounded(.down))
        let last = Int((high / unit - 1e-9).rounded(.up))
        return make(first: first, last: last, mantissa: mantissa, exponent: exponent, domain: nil)
    }

    /// Ticks inside `range` (the domain stays `range`): nice multiples of a step chosen for about
    /// `targetCount` intervals and never smaller than `minimumStep` (use 1 for integer-only ticks such as epochs).
    /// For example `−1.05…1.03` gives `−1, −0.5, 0, 0.5, 1`. A degenerate or non-finite range is widened first
    /// (see ``sanitized(_:)``).
    public static func within(_ range: ClosedRange<Double>, targetCount: Int = 5, minimumStep: Double = 0) -> NiceTicks {
        let (low, high) = sanitized(range)
        var parts = niceStepParts(for: (high - low) / Double(max(targetCount, 1)))
        if minimumStep > 0, value(index: 1, mantissa: parts.0, exponent: parts.1) < minimumStep {
            parts = niceStepParts(for: minimumStep)
        }
        let unit = value(index: 1, mantissa: parts.0, exponent: parts.1)
        let first = Int((low / unit - 1e-9).rounded(.up))
        let last = Int((high / unit + 1e-9).rounded(.down))
        return make(first: first, last: last, mantissa: parts.0, exponent: parts.1, domain: low...high)
    }

    /// The range actually used for ticks: non-finite bounds give `0…1`, finite bounds beyond ±10³⁰⁰ are clamped
    /// to ±10³⁰⁰ (so that spans and steps stay finite), and a zero-width range `v…v` (or one narrower than
    /// 10⁻³⁰⁰) is widened to `v − d … v + d` with `d = max(|v| × 0.1, 0.5)`, so that a constant series still gets
    /// an axis.
    public static func sanitized(_ range: ClosedRange<Double>) -> (Double, Double) {
        guard range.lowerBound.isFinite, range.upperBound.isFinite else { return (0, 1) }
        let low = min(max(range.lowerBound, -1e300), 1e300), high = min(max(range.upperBound, -1e300), 1e300)
        if high - low > max(abs(low), abs(high)) * 1e-12, high - low >= 1e-300 { return (low, high) }
        let pad = max(abs(low) * 0.1, 0.5)
        return (low - pad, high + pad)
    }

    // MARK: - Internals

    private static func niceStepParts(for rawStep: Double) -> (Int, Int) {
        guard rawStep.isFinite, rawStep > 0 else { return (1, 0) }
        var exponent = Int(log10(rawStep).rounded(.down))
        let fraction = rawStep / SVGFormat.powerOfTen(exponent)
        let tolerance = 1e-9
        let mantissa: Int
        if fraction <= 1 + tolerance { mantissa = 1 }
        else if fraction <= 2 + tolerance { mantissa = 2 }
        else if fraction <= 5 + tolerance { mantissa = 5 }
        else { mantissa = 1; exponent += 1 }
        return (mantissa, exponent)
    }

    private static func value(index: Int, mantissa: Int, exponent: Int) -> Double {
        let integer = Double(index * mantissa)
        return exponent >= 0 ? integer * SVGFormat.powerOfTen(exponent) : integer / SVGFormat.powerOfTen(-exponent)
    }

    private static func make(first: Int, last: Int, mantissa: Int, exponent: Int, domain: ClosedRange<Double>?) -> NiceTicks {
        // Guard against absurd tick counts (only reachable through extreme minimumStep/targetCount choices).
        let upper = max(first, min(last, first + 1000))
        let values = first <= last ? (first...upper).map { value(index: $0, mantissa: mantissa, exponent: exponent) } : []
        let step = value(index: 1, mantissa: mantissa, exponent: exponent)
        let ownDomain = domain ?? (values.first ?? 0)...(values.last ?? 1)
        return NiceTicks(values: values, step: step, domain: ownDomain, decimals: max(0, -exponent), mantissa: mantissa,
                         exponent: exponent)
    }
}

/// A linear map from a data interval (``domain``) to a pixel interval (``pixelStart`` … ``pixelEnd``).
///
/// For a y axis pass the bottom pixel as `pixelStart` and the top pixel as `pixelEnd`, so larger values are
/// drawn higher up (SVG's y axis points down). A zero-width domain maps every value to the pixel midpoint.
public struct LinearScale: Sendable, Equatable {
    /// The data interval.
    public let domain: ClosedRange<Double>
    /// The pixel that `domain.lowerBound` maps to.
    public let pixelStart: Double
    /// The pixel that `domain.upperBound` maps to.
    public let pixelEnd: Double

    /// Creates a scale sending `domain.lowerBound` to `pixelStart` and `domain.upperBound` to `pixelEnd`.
    public init(domain: ClosedRange<Double>, pixelStart: Double, pixelEnd: Double) {
        self.domain = domain
        self.pixelStart = pixelStart
        self.pixelEnd = pixelEnd
    }

    /// The pixel coordinate of the data value `value` (values outside the domain extrapolate linearly).
    public func callAsFunction(_ value: Double) -> Double {
        let span = domain.upperBound - domain.lowerBound
        guard span > 0 else { return (pixelStart + pixelEnd) / 2 }
        return pixelStart + (value - domain.lowerBound) / span * (pixelEnd - pixelStart)
    }
}
