/// The L2 penalty λ·Σ‖W‖² over dense weight matrices only (biases and scales are not penalised), as
/// Keras's `kernel_regularizer=l2(λ)` adds it to the loss.
public enum L2Penalty {
    /// Returns λ·Σ‖W‖² (nats, added to the mean NLL) and adds its gradient 2λW to `gradient` (flat layout).
    @discardableResult
    public static func add<S: FlowScalar>(
        l2: Double, parameters: UnsafePointer<S>, layout: ParameterLayout, to gradient: UnsafeMutablePointer<S>
    ) -> Double {
        guard l2 != 0 else { return 0 }
        var sum = 0.0
        let twoL = S(2 * l2)
        for slot in layout.tensors where slot.isWeightMatrix {
            let w = parameters + slot.offset, g = gradient + slot.offset
            var s = 0.0
            for e in 0..<slot.count {
                s += Double(w[e]) * Double(w[e])
                g[e] += twoL * w[e]
            }
            sum += s
        }
        return l2 * sum
    }

    /// Array convenience of ``add(l2:parameters:layout:to:)-(_,UnsafePointer<S>,_,_)``.
    @discardableResult
    public static func add<S: FlowScalar>(l2: Double, parameters: [S], layout: ParameterLayout, to gradient: inout [S]) -> Double {
        parameters.withUnsafeBufferPointer { p in
            gradient.withUnsafeMutableBufferPointer { g in
                add(l2: l2, parameters: p.baseAddress!, layout: layout, to: g.baseAddress!)
            }
        }
    }

    /// λ·Σ‖W‖² without touching a gradient.
    public static func value<S: FlowScalar>(l2: Double, parameters: UnsafePointer<S>, layout: ParameterLayout) -> Double {
        guard l2 != 0 else { return 0 }
        var sum = 0.0
        for slot in layout.tensors where slot.isWeightMatrix {
            let w = parameters + slot.offset
            for e in 0..<slot.count { sum += Double(w[e]) * Double(w[e]) }
        }
        return l2 * sum
    }
}
