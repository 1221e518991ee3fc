/// 64-bit FNV-1a (Fowler, Noll & Vo): the project's one fingerprint of data, parameters and contexts, to check that
/// every rank holds the same bytes and that a resumed run reads the data it was trained on. Not cryptographic.
///
/// Example:
/// ```swift
/// var h = FNV1a()
/// h.mix(UInt64(rows)); h.mix(UInt64(columns))
/// for v in values { h.mix(UInt64(v.bitPattern)) }
/// let fingerprint = h.value
/// ```
public struct FNV1a: Sendable {
    /// The hash of everything mixed in so far (the FNV offset basis before the first value).
    public var value: UInt64 = 0xcbf2_9ce4_8422_2325

    /// An empty hash.
    public init() {}

    /// Mixes in one 64-bit value (the whole word at once: one xor and one multiply by the FNV prime).
    @inlinable public mutating func mix(_ x: UInt64) {
        value ^= x
        value = value &* 0x0000_0100_0000_01b3
    }
}

extension Matrix where Scalar == Double {
    /// A 64-bit fingerprint (``FNV1a`` over the shape and the Float32 bit patterns), to check that every rank
    /// trains on the same data (recorded in checkpoints as `data_fingerprint`).
    public var fingerprint: UInt64 {
        var h = FNV1a()
        h.mix(UInt64(rows)); h.mix(UInt64(columns))
        for v in values { h.mix(UInt64(Float(v).bitPattern)) }
        return h.value
    }
}

extension Matrix where Scalar == Float {
    /// A 64-bit fingerprint (``FNV1a`` over the shape and the bit patterns): equal to the fingerprint of the same
    /// values held as `Matrix<Double>`.
    public var fingerprint: UInt64 {
        var h = FNV1a()
        h.mix(UInt64(rows)); h.mix(UInt64(columns))
        for v in values { h.mix(UInt64(v.bitPattern)) }
        return h.value
    }
}
