import RealModule

/// The 2-D toy data sets of the density-estimation literature, generated from the seeded counter-based
/// generator (purpose `.data`, substream = the set's identifier), so a set is a pure function of
/// (name, n, noise, seed).
///
/// `moons` has the shape of scikit-learn's `make_moons` (two interleaving half circles, ⌊n/2⌋ outer and
/// ⌈n/2⌉ inner points, Gaussian noise of standard deviation `noise`, rows shuffled); the others follow
/// FFJORD's `toy_data.py` (Grathwohl et al., ICLR 2019).
public enum ToyDataset: String, CaseIterable, Codable, Sendable {
    case moons, circles
    case eightGaussians = "8gaussians"
    case pinwheel
    case twoSpirals = "2spirals"
    case checkerboard

    /// The default noise level of each set (moons: 0.05, as the seed).
    public var defaultNoise: Double {
        switch self {
        case .moons: return 0.05
        case .circles: return 0.08
        case .eightGaussians: return 0.5
        case .pinwheel: return 0.3
        case .twoSpirals: return 0.1
        case .checkerboard: return 0
        }
    }

    var identifier: UInt32 { UInt32(ToyDataset.allCases.firstIndex(of: self)! + 1) }

    /// The class of every point of ``generate(count:noise:seed:)`` for the sets made of two parts, nil for the
    /// others: moons 0 = the upper moon, 1 = the lower; circles 0 = the outer circle, 1 = the inner. (The label
    /// depends on the count and seed only, not on the noise.)
    public func labels(count n: Int, seed: UInt64) -> [Int]? {
        switch self {
        case .moons, .circles:
            let nOut = n / 2
            let order = RandomStream(seed: seed, purpose: .data, substream: identifier + 1000).permutation(n)
            return order.map { $0 < nOut ? 0 : 1 }
        default:
            return nil
        }
    }

    /// Names of the classes of ``labels(count:seed:)``.
    public var classNames: [String]? {
        switch self {
        case .moons: return ["upper moon", "lower moon"]
        case .circles: return ["outer circle", "inner circle"]
        default: return nil
        }
    }

    /// Generates `n` points `[n, 2]` (Double) with the given noise level and seed.
    public func generate(count n: Int, noise: Double? = nil, seed: UInt64) -> Matrix<Double> {
        let noise = noise ?? defaultNoise
        let rng = RandomStream(seed: seed, purpose: .data, substream: identifier)
        // Draw addresses: index = row · 8 + slot (slots 0…7 per row), so rows never share draws.
        func u(_ i: Int, _ slot: Int) -> Double { rng.uniform(UInt64(i * 8 + slot)) }
        func g(_ i: Int, _ slot: Int) -> Double { rng.normal(UInt64(i * 8 + slot)) }
        var v = [Double](repeating: 0, count: 2 * n)
        switch self {
        case .moons:
            let nOut = n / 2, nIn = n - nOut
            var pts: [(Double, Double)] = []
            for i in 0..<nOut {
                let a = nOut > 1 ? Double.pi * Double(i) / Double(nOut - 1) : 0
                pts.append((Double.cos(a), Double.sin(a)))
            }
            for i in 0..<nIn {
                let a = nIn > 1 ? Double.pi * Double(i) / Double(nIn - 1) : 0
                pts.append((1 - Double.cos(a), 1 - Double.sin(a) - 0.5))
            }
            let order = RandomStream(seed: seed, purpose: .data, substream: identifier + 1000).permutation(n)
            for (row, src) in order.enumerated() {
                v[2 * row] = pts[src].0 + noise * g(row, 0)
                v[2 * row + 1] = pts[src].1 + noise * g(row, 1)
            }
        case .circles:
            // make_circles(factor = 0.5) scaled by 3, as FFJORD.
            let nOut = n / 2, nIn = n - nOut
            var pts: [(Double, Double)] = []
            for i in 0..<nOut {
                let a = 2 * Double.pi * Double(i) / Double(max(nOut, 1))
                pts.append((Double.cos(a), Double.sin(a)))
            }
            for i in 0..<nIn {
                let a = 2 * Double.pi * Double(i) / Double(max(nIn, 1))
                pts.append((0.5 * Double.cos(a), 0.5 * Double.sin(a)))
            }
            let order = RandomStream(seed: seed, purpose: .data, substream: identifier + 1000).permutation(n)
            for (row, src) in order.enumerated() {
                v[2 * row] = 3 * (pts[src].0 + noise * g(row, 0))
                v[2 * row + 1] = 3 * (pts[src].1 + noise * g(row, 1))
            }
        case .eightGaussians:
            let r = 1 / 2.0.squareRoot()
            let centers: [(Double, Double)] = [(1, 0), (-1, 0), (0, 1), (0, -1), (r, r), (r, -r), (-r, r), (-r, -r)]
            for i in 0..<n {
                let c = centers[Int(rng.integer(UInt64(i * 8 + 2), below: 8))]
                v[2 * i] = (g(i, 0) * noise + 4 * c.0) / 1.414
                v[2 * i + 1] = (g(i, 1) * noise + 4 * c.1) / 1.414
            }
        case .pinwheel:
            let classes = 5, rate = 0.25, tangential = 0.1, radial = noise
            for i in 0..<n {
                let label = Int(rng.integer(UInt64(i * 8 + 2), below: UInt64(classes)))
                let fx = g(i, 0) * radial + 1, fy = g(i, 1) * tangential
                let angle = 2 * Double.pi * Double(label) / Double(classes) + rate * Double.exp(fx)
                let (c, s) = (Double.cos(angle), Double.sin(angle))
                v[2 * i] = 2 * (fx * c - fy * s)
                v[2 * i + 1] = 2 * (fx * s + fy * c)
            }
        case .twoSpirals:
            for i in 0..<n {
                let t = u(i, 0).squareRoot() * 540 * 2 * Double.pi / 360
                var x = -Double.cos(t) * t + u(i, 1) * 0.5
                var y = Double.sin(t) * t + u(i, 2) * 0.5
                if i % 2 == 1 { x = -x; y = -y }
                v[2 * i] = x / 3 + g(i, 3) * noise
                v[2 * i + 1] = y / 3 + g(i, 4) * noise
            }
        case .checkerboard:
            for i in 0..<n {
                let x1 = u(i, 0) * 4 - 2
                let x2a = u(i, 1) - Double(rng.integer(UInt64(i * 8 + 2), below: 2)) * 2
                let x2 = x2a + Double((Int(x1.rounded(.down)) % 2 + 2) % 2)
                v[2 * i] = 2 * x1 + noise * g(i, 3)
                v[2 * i + 1] = 2 * x2 + noise * g(i, 4)
            }
        }
        return Matrix(rows: n, columns: 2, values: v)
    }
}
