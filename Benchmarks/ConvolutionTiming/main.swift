// Times our 3×3 convolutions (Convolution3x3, layout [C, n, H, W]) on every convolution shape of realnvp-small, one
// thread, one worker's shard of 32 images: forward, and backward (weights, bias and data together, as a step calls it),
// by every method: Winograd F(2×2, 3×3) with the direct kernels for thin convolutions and weight gradients (Float32's
// default where the CPU has AVX2 + FMA), the direct AVX2 kernels alone, and im2col + the system BLAS, in alternating
// rounds. The same shapes and counts as Benchmarks/Convolution/conv_onednn.cpp (oneDNN), for the
// comparison in BENCHMARKS.md §13.
//   swift build -c release --product flow-conv-bench
//   .build/release/flow-conv-bench [rounds]
import FlowCore
import Foundation

struct Conv { var ci: Int, co: Int, hw: Int, count: Int }

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }

/// Median of 5 timings of `runs` runs of `body`, seconds per run.
func timed(runs: Int, _ body: () -> Void) -> Double {
    var t: [Double] = []
    for _ in 0..<5 {
        let t0 = now()
        for _ in 0..<runs { body() }
        t.append((now() - t0) / Double(runs))
    }
    return t.sorted()[2]
}

BLASRuntime.useSingleThread()
FloatEnvironment.enableFlushToZero()
let n = 32, channels = 32
/// One coupling's convolutions, `count` couplings: conv in (c_in → 32), 4 residual (32 → 32), conv out (32 → 2·c_out).
func coupling(_ ci: Int, _ co: Int, _ hw: Int, _ count: Int) -> [Conv] {
    [Conv(ci: ci, co: channels, hw: hw, count: count), Conv(ci: channels, co: channels, hw: hw, count: 4 * count),
     Conv(ci: channels, co: 2 * co, hw: hw, count: count)]
}
let convs = coupling(1, 1, 28, 3)  // level 0, checkerboard on 1×28×28
    + coupling(2, 2, 14, 3)        // level 0, channel-wise on 4×14×14
    + coupling(2, 2, 14, 3)        // level 1, checkerboard on 2×14×14
    + coupling(4, 4, 7, 3)         // level 1, channel-wise on 8×7×7
    + coupling(4, 4, 7, 4)         // final, checkerboard on 4×7×7
/// Times every convolution by `method`; prints one line per shape and the total.
func run(_ method: Convolution3x3.Method) {
    var total = 0.0, flops = 0.0, forwardTotal = 0.0, backwardTotal = 0.0
    for c in convs {
        let e = Convolution3x3.Extent(images: n, height: c.hw, width: c.hw)
        func filled(_ count: Int) -> AlignedBuffer<Float> {
            let b = AlignedBuffer<Float>(count: count)
            for i in 0..<count { b.base[i] = 0.01 * Float((i * 7) % 13) - 0.06 }
            return b
        }
        let x = filled(c.ci * e.plane), w = filled(c.co * c.ci * 9), b = filled(c.co), y = filled(c.co * e.plane)
        let dy = filled(c.co * e.plane), dx = filled(c.ci * e.plane), dw = filled(c.co * c.ci * 9), db = filled(c.co)
        let scratch = AlignedBuffer<Float>(count: Convolution3x3.scratchCount(channels: max(c.ci, c.co), height: e.height, width: e.width))
        let runs = c.hw == 28 ? 5 : 20
        let tf = timed(runs: runs) {
            Convolution3x3.forward(x.base, inputChannels: c.ci, extent: e, weight: w.base, bias: b.base, outputChannels: c.co,
                                   into: y.base, scratch: scratch.base, method: method)
        }
        let tb = timed(runs: runs) {
            Convolution3x3.backward(dy.base, input: x.base, inputChannels: c.ci, extent: e, weight: w.base, outputChannels: c.co,
                                    dWeight: dw.base, dBias: db.base, accumulate: false, dx: dx.base, scratch: scratch.base, method: method)
        }
        let fl = 2.0 * Double(n * c.hw * c.hw * c.co * c.ci * 9 * 3 * c.count)
        total += (tf + tb) * Double(c.count)
        forwardTotal += tf * Double(c.count)
        backwardTotal += tb * Double(c.count)
        flops += fl
        print(String(format: "%2d → %2d  %2d×%-2d ×%2d  fwd %7.3f ms  bwd (data + weights) %7.3f ms  %6.1f GFLOP/s", c.ci, c.co, c.hw, c.hw,
                     c.count, tf * 1e3, tb * 1e3, fl / ((tf + tb) * Double(c.count)) / 1e9))
    }
    let label = switch method {
    case .winograd: "Winograd F(2×2, 3×3) + direct AVX2 kernels"
    case .direct: "direct AVX2 kernels"
    case .im2colGEMM: "im2col + BLAS (\(BLASRuntime.coreName))"
    }
    print(String(format: "%@: all convolutions of a training step on %d images: %.1f ms (fwd %.1f, bwd %.1f), %.1f GFLOP/s, %.1f images/s",
                 label, n, total * 1e3, forwardTotal * 1e3, backwardTotal * 1e3, flops / total / 1e9, Double(n) / total))
}

let rounds = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 1 : 1
for round in 1...max(1, rounds) {
    print("round \(round)")
    if Convolution3x3.directAvailable {
        run(.winograd)
        run(.direct)
    }
    run(.im2colGEMM)
}
