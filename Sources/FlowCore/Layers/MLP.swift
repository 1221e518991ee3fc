/// The s and t networks: `hiddenLayers` Dense+ReLU layers of width H, then a Dense output layer (the
/// caller applies tanh for s, identity for t).
///
/// Buffers (row-major, owned by the caller's ``FlowWorkspace``):
/// - `input`   `[rows, D]`        the masked coupling input b⊙x
/// - `acts[l]` `[rows, H]`, l < L  post-ReLU activations of hidden layer l
/// - `output`  `[rows, D]`        pre-activation of the output layer
/// - `scratch0`, `scratch1` `[rows, H]` backward ping-pong; `thin` `[4·H]` thin-layer scratch
enum MLP {
    /// Forward through layers 0…L, keeping every hidden activation for the backward pass.
    @inline(__always)
    static func forward<S: FlowScalar>(
        _ layers: [DenseSlot], parameters p: UnsafePointer<S>,
        input: UnsafePointer<S>, rows: Int,
        activations acts: (Int) -> UnsafeMutablePointer<S>,
        output: UnsafeMutablePointer<S>, thin: UnsafeMutablePointer<S>
    ) {
        let L = layers.count - 1
        for l in 0...L {
            let layer = layers[l]
            let src: UnsafePointer<S> = l == 0 ? input : UnsafePointer(acts(l - 1))
            let dst = l == L ? output : acts(l)
            // a_{l+1} = relu(a_l·W_lᵀ + b_l)   (no relu at l = L)
            Dense.forward(src, rows: rows, inputs: layer.inputs, weight: p + layer.weight, bias: p + layer.bias,
                          outputs: layer.outputs, into: dst, relu: l < L, scratch: thin)
        }
    }

    /// Backward from dL/d(output pre-activation) `dOutput` `[rows, D]`: parameter gradients into `g` (same
    /// layout as the parameters; overwrite or accumulate), and, when `dInput` is given, dL/d input `[rows, D]`.
    @inline(__always)
    static func backward<S: FlowScalar>(
        _ layers: [DenseSlot], parameters p: UnsafePointer<S>, gradient g: UnsafeMutablePointer<S>,
        accumulate: Bool,
        input: UnsafePointer<S>, rows: Int,
        activations acts: (Int) -> UnsafeMutablePointer<S>,
        dOutput: UnsafePointer<S>, dInput: UnsafeMutablePointer<S>?,
        scratch0: UnsafeMutablePointer<S>, scratch1: UnsafeMutablePointer<S>, thin: UnsafeMutablePointer<S>
    ) {
        let L = layers.count - 1
        // db_L = Σ_rows dOutput
        let top = layers[L]
        if !accumulate { (g + top.bias).update(repeating: 0, count: top.outputs) }
        VectorKernels.addColumnSums(dOutput, rows: rows, columns: top.outputs, into: g + top.bias)
        var dCur = dOutput
        var flip = false
        for l in stride(from: L, through: 0, by: -1) {
            let layer = layers[l]
            // forward: a_{l+1} = relu(a_l·W_lᵀ + b_l)  ⇒  dW_l = dz_lᵀ·a_l,  da_l = dz_l·W_l,  dz_{l-1} = da_l ⊙ [a_l > 0]
            let src: UnsafePointer<S> = l == 0 ? input : UnsafePointer(acts(l - 1))
            Dense.backwardWeight(dCur, x: src, rows: rows, inputs: layer.inputs, outputs: layer.outputs,
                                 dWeight: g + layer.weight, accumulate: accumulate, scratch: thin)
            if l == 0 {
                if let dIn = dInput {
                    Dense.backwardInput(dCur, rows: rows, inputs: layer.inputs, outputs: layer.outputs,
                                        weight: p + layer.weight, into: dIn, scratch: thin)
                }
            } else {
                let dst = flip ? scratch1 : scratch0
                flip.toggle()
                Dense.backwardInput(dCur, rows: rows, inputs: layer.inputs, outputs: layer.outputs,
                                    weight: p + layer.weight, into: dst, scratch: thin)
                // relu' from the stored activation, fused with db_{l-1} = Σ_rows dz_{l-1}
                let below = layers[l - 1]
                if !accumulate { (g + below.bias).update(repeating: 0, count: below.outputs) }
                VectorKernels.reluMask(dst, activation: acts(l - 1), rows: rows, columns: layer.inputs,
                                       columnSums: g + below.bias)
                dCur = UnsafePointer(dst)
            }
        }
    }
}
