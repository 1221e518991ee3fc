/// The Philox4x32-10 counter-based generator: a keyed bijection of 128-bit counters.
///
/// Output block = Philox(key, counter), a pure function, so any draw can be computed from its address
/// without generating the ones before it. This is what makes every random quantity in the project (an
/// initial weight, a data point, an epoch's permutation, the noise of sample i) independent of how work is
/// split across threads and ranks.
///
/// Source: J. K. Salmon, M. A. Moraes, R. O. Dror, D. E. Shaw, "Parallel random numbers: as easy as 1, 2, 3",
/// SC'11, section 4.1 (multipliers 0xD2511F53, 0xCD9E8D57; Weyl key increments 0x9E3779B9, 0xBB67AE85;
/// 10 rounds). Checked against the Random123 known-answer vectors.
public struct Philox4x32_10: Sendable, Hashable {
    /// The two 32-bit key words.
    public var key: (UInt32, UInt32)

    /// A generator with key words `(k0, k1)`.
    @inlinable public init(key0: UInt32, key1: UInt32) { key = (key0, key1) }

    /// A generator keyed by a 64-bit seed: k0 = low word, k1 = high word.
    @inlinable public init(seed: UInt64) {
        key = (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
    }

    /// The 128-bit output block for a 128-bit counter `(c0, c1, c2, c3)`.
    @inlinable
    public func block(_ c0: UInt32, _ c1: UInt32, _ c2: UInt32, _ c3: UInt32)
        -> (UInt32, UInt32, UInt32, UInt32)
    {
        var x0 = c0, x1 = c1, x2 = c2, x3 = c3
        var k0 = key.0, k1 = key.1
        for round in 0..<10 {
            if round > 0 {
                k0 &+= 0x9E37_79B9
                k1 &+= 0xBB67_AE85
            }
            let p0 = UInt64(0xD251_1F53) &* UInt64(x0)
            let p1 = UInt64(0xCD9E_8D57) &* UInt64(x2)
            let hi0 = UInt32(truncatingIfNeeded: p0 >> 32), lo0 = UInt32(truncatingIfNeeded: p0)
            let hi1 = UInt32(truncatingIfNeeded: p1 >> 32), lo1 = UInt32(truncatingIfNeeded: p1)
            x0 = hi1 ^ x1 ^ k0
            x1 = lo1
            x2 = hi0 ^ x3 ^ k1
            x3 = lo0
        }
        return (x0, x1, x2, x3)
    }

    /// Equatable/Hashable on the key.
    public static func == (a: Self, b: Self) -> Bool { a.key == b.key }
    public func hash(into h: inout Hasher) { h.combine(key.0); h.combine(key.1) }
}
