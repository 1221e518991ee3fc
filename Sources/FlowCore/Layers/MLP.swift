/// The s and t networks: `hiddenLayers` Dense+ReLU layers of width H, then a Dense output layer (the
/// caller applies tanh for s, identity for t).
///
/// Buffers (row-major, owned by the caller's ``FlowWorkspace``):
/// - `input`  `[rows, D]`                    the masked coupling input b⊙x
/// - `acts[l]` `[rows, H]`, l = 0..<L         post-ReLU activations of hidden layer l
/// - `output` `[rows, D]`                    pre-activation of the output layer
enum MLP {
    /// Forward through layers 0…L, keeping every hidden activation for the backward pass.
    @inline(__always)
    static func forward<S: FlowScalar>(
        _ layers: [DenseSlot], parameters p: UnsafePointer<S>,
        input: UnsafePointer<S>, rows: Int,
        activations acts: (Int) -> UnsafeMutablePointer<S>,
        output: UnsafeMutablePointer<S>
    ) {
        let L = layers.count - 1
        for l in 0...L {
            let layer = layers[l]
            let src: UnsafePointer<S> = l == 0 ? input : UnsafePointer(acts(l - 1))
            let dst = l == L ? output : acts(l)
            Dense.forward(src, rows: rows, inputs: layer.inputs, weight: p + layer.weight, bias: p + layer.bias,
                          outputs: layer.outputs, into: dst, relu: l < L)
        }
    }

    /// Backward from dL/d(output pre-activation) `dOutput` `[rows, D]`: parameter gradients into `grad`
    /// (same layout as the parameters; overwrite or accumulate), and, when `dInput` is given, dL/d input
    /// `[rows, D]`. `scratch0`, `scratch1` are `[rows, H]` ping-pong buffers.
    @inline(__always)
    static func backward<S: FlowScalar>(
        _ layers: [DenseSlot], parameters p: UnsafePointer<S>, gradient g: UnsafeMutablePointer<S>,
        accumulate: Bool,
        input: UnsafePointer<S>, rows: Int,
        activations acts: (Int) -> UnsafeMutablePointer<S>,
        dOutput: UnsafePointer<S>, dInput: UnsafeMutablePointer<S>?,
        scratch0: UnsafeMutablePointer<S>, scratch1: UnsafeMutablePointer<S>
    ) {
        let L = layers.count - 1
        var dCur = dOutput
        var flip = false
        for l in stride(from: L, through: 0, by: -1) {
            let layer = layers[l]
            // forward: a_{l+1} = relu(a_l·W_lᵀ + b_l)  (no relu at l = L)
            let src: UnsafePointer<S> = l == 0 ? input : UnsafePointer(acts(l - 1))
            Dense.backwardParameters(dCur, x: src, rows: rows, inputs: layer.inputs, outputs: layer.outputs,
                                     dWeight: g + layer.weight, dBias: g + layer.bias, accumulate: accumulate)
            if l == 0 {
                if let dIn = dInput {
                    Dense.backwardInput(dCur, rows: rows, inputs: layer.inputs, outputs: layer.outputs,
                                        weight: p + layer.weight, into: dIn)
                }
            } else {
                let dst = flip ? scratch1 : scratch0
                flip.toggle()
                Dense.backwardInput(dCur, rows: rows, inputs: layer.inputs, outputs: layer.outputs,
                                    weight: p + layer.weight, into: dst)
                // relu'(z) = [a > 0] with a the stored post-ReLU activation a_l
                let a = acts(l - 1)
                let n = rows * layer.inputs
                for e in 0..<n { dst[e] = a[e] > 0 ? dst[e] : 0 }
                dCur = UnsafePointer(dst)
            }
        }
    }
}
