/// Clipping by global norm (Pascanu et al., ICML 2013): when ‖g‖₂ > maxNorm, g ← g · maxNorm/‖g‖₂.
public enum GradientClipping {
    /// The L2 norm of `count` elements of `g`, accumulated in Double.
    public static func norm<S: FlowScalar>(_ g: UnsafePointer<S>, count: Int) -> Double {
        var s = 0.0
        for e in 0..<count { let x = Double(g[e]); s += x * x }
        return s.squareRoot()
    }

    /// Scales `g` `[count]` in place so that its norm is at most `maxNorm`; returns the norm before clipping.
    @discardableResult
    public static func clip<S: FlowScalar>(_ g: UnsafeMutablePointer<S>, count: Int, maxNorm: Double) -> Double {
        let n = norm(g, count: count)
        if n > maxNorm, n.isFinite {
            let f = S(maxNorm / n)
            for e in 0..<count { g[e] *= f }
        }
        return n
    }
}
