import RealModule

/// What a stream of random numbers is for. Each purpose has its own counter space, so adding draws for
/// one purpose never shifts another's.
public enum RandomPurpose: UInt32, Sendable {
    /// Initial weights; substream = tensor index.
    case initialization = 1
    /// Synthetic data sets; substream = data-set identifier.
    case data = 2
    /// The train/validation split.
    case split = 3
    /// Epoch permutations; substream = epoch.
    case shuffle = 4
    /// Sampling noise z ~ N(0, τ²I); index = sample row × D + feature.
    case sampling = 5
    /// Uniform dequantisation noise; substream = epoch (or a fixed evaluation stream).
    case dequantization = 6
    /// Anything else a test or tool needs.
    case auxiliary = 7
}

/// A stream of random numbers addressed by `(seed, purpose, substream, index)`: draw `index` is a pure
/// function of its address, computed by one Philox4x32-10 block with key = seed and counter =
/// (index low word, index high word, purpose, substream).
///
/// Uniform draws use the top bits of the block's words; normal draws use Box–Muller on two 53-bit
/// uniforms (the cosine branch only, so that each index maps to exactly one normal).
public struct RandomStream: Sendable, Hashable {
    /// The generator, keyed by the run's seed.
    public let philox: Philox4x32_10
    /// The purpose word of the counter.
    public let purpose: UInt32
    /// The substream word of the counter (epoch, tensor, data set, …).
    public let substream: UInt32

    /// A stream for `purpose` and `substream` under `seed`.
    @inlinable
    public init(seed: UInt64, purpose: RandomPurpose, substream: UInt32 = 0) {
        philox = Philox4x32_10(seed: seed)
        self.purpose = purpose.rawValue
        self.substream = substream
    }

    /// The raw 128-bit block at `index`.
    @inlinable
    public func block(_ index: UInt64) -> (UInt32, UInt32, UInt32, UInt32) {
        philox.block(UInt32(truncatingIfNeeded: index), UInt32(truncatingIfNeeded: index >> 32), purpose, substream)
    }

    /// 64 random bits at `index` (words 0 and 1).
    @inlinable
    public func bits64(_ index: UInt64) -> UInt64 {
        let b = block(index)
        return UInt64(b.0) << 32 | UInt64(b.1)
    }

    /// A uniform Double in [0, 1) with 53 random bits.
    @inlinable
    public func uniform(_ index: UInt64) -> Double {
        Double(bits64(index) >> 11) * 0x1p-53
    }

    /// A uniform Float in [0, 1) with 24 random bits.
    @inlinable
    public func uniformFloat(_ index: UInt64) -> Float {
        Float(block(index).0 >> 8) * 0x1p-24
    }

    /// A uniform integer in `0..<bound` (bound > 0) by the multiply-shift method (Lemire 2019), from 64
    /// random bits; bias at most bound / 2⁶⁴.
    @inlinable
    public func integer(_ index: UInt64, below bound: UInt64) -> UInt64 {
        precondition(bound > 0)
        return bits64(index).multipliedFullWidth(by: bound).high
    }

    /// A standard normal draw N(0, 1) by Box–Muller: u₁ ∈ (0, 1] from words 0–1, u₂ ∈ [0, 1) from words
    /// 2–3, z = √(−2 ln u₁)·cos(2π u₂).
    @inlinable
    public func normal(_ index: UInt64) -> Double {
        let b = block(index)
        let r1 = (UInt64(b.0) << 32 | UInt64(b.1)) >> 11
        let r2 = (UInt64(b.2) << 32 | UInt64(b.3)) >> 11
        let u1 = (Double(r1) + 1) * 0x1p-53  // (0, 1]
        let u2 = Double(r2) * 0x1p-53  // [0, 1)
        return (-2 * Double.log(u1)).squareRoot() * Double.cos(2 * Double.pi * u2)
    }

    /// A uniformly random permutation of `0..<n` (Fisher–Yates, swap i with j = integer(i, below: i + 1)).
    public func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        if n < 2 { return p }
        for i in stride(from: n - 1, through: 1, by: -1) {
            let j = Int(integer(UInt64(i), below: UInt64(i + 1)))
            p.swapAt(i, j)
        }
        return p
    }
}
