// Counts heap allocations in steady-state training steps of the seed model (or a smaller one, or the image flow
// realnvp-small on 1×28×28, optionally class-conditional), with ordo-one/malloc-interposer. Run it with the
// interposer preloaded:
//
//   swift build -c release --product flow-alloc-count
//   LD_PRELOAD=.build/release/libMallocInterposerSwift.so .build/release/flow-alloc-count [--threads 2] [--small | --image [--conditional] [--batch-norm]] [--reproducible]
//
// It runs warm-up steps (the first step of an epoch allocates the epoch's permutation), then counts every
// malloc/calloc/realloc during the next steps of the same epoch and prints the counts; exit status 1 when
// any allocation happened (so scripts and tests can rely on it).
import FlowCore
import FlowDistributed
import Foundation
import MallocInterposerSwift

let args = CommandLine.arguments
func value(_ flag: String) -> Int? { args.firstIndex(of: flag).flatMap { Int(args[$0 + 1]) } }
let threads = value("--threads") ?? 2
let small = args.contains("--small")
let image = args.contains("--image"), conditional = args.contains("--conditional"), batchNorm = args.contains("--batch-norm")
let reproducible = args.contains("--reproducible")
let steps = value("--steps") ?? 10  // steps 11 … 20: includes the parameter average's update after step 20
let warmup = 10  // the permutation, lazily created state, and the average's first update (step 10)

var model: FlowConfiguration = small ? FlowConfiguration(dim: 2, couplings: 4, hidden: 32, hiddenLayers: 2) : .seed()
if image {
    var architecture = ImageFlowArchitecture.realNVPSmall(input: ImageShape(channels: 1, height: 28, width: 28))
    if batchNorm { (architecture.actNorm, architecture.batchNorm) = (false, true) }
    model = .imageFlow(architecture, preprocessing: .dequantizeLogit(levels: 256, alpha: 0.05))
    if conditional { (model.contextFeatures, model.contextClasses) = (10, 10) }
}
let batch = image ? 64 : 256
var config = TrainingConfiguration(model: model, epochs: 1, batchSize: batch, learningRate: 1e-4, l2: image ? 0 : 0.001,
                                   clipNorm: 100, seed: 0, reproducible: reproducible)
config.validationFraction = 0
config.emaMomentum = 0.99  // as train's default
let rows = batch * (warmup + steps + 1)
let data: Matrix<Double>
let normalizer: Normalizer<Float>
if image {
    // Random 8-bit images (the step's work does not depend on the pixels), then the one-hot class.
    let r = RandomStream(seed: 1, purpose: .auxiliary)
    let K = conditional ? 10 : 0, W = 784 + K
    data = Matrix(rows: rows, columns: W, values: (0..<(rows * W)).map { e in
        e % W < 784 ? Double(r.integer(UInt64(e), below: 256)) : (e % W - 784 == (e / W) % 10 ? 1 : 0)
    })
    normalizer = .identity(dim: 784)
} else {
    data = ToyDataset.moons.generate(count: rows, seed: 0)
    normalizer = try Normalizer<Float>.fit(data)
}
let trainer = try DataParallelTrainer(configuration: config, normalizer: normalizer, train: data, validation: nil,
                                      communicator: SingleProcessCommunicator(), threads: threads)
MallocInterposerSwift.initialize()
if args.contains("--pool-only") {
    let pool = WorkerPool(count: threads)
    let buffer = AlignedBuffer<Float>(count: 1024)
    pool.run { w in buffer[w] = 1 }
    MallocInterposerSwift.reset()
    MallocInterposerSwift.hook()
    for _ in 0..<100 { pool.run { w in buffer[w] += 1 } }
    MallocInterposerSwift.unhook()
    print("pool.run ×100: \(MallocInterposerSwift.getStatistics().mallocCount) mallocs")
    exit(0)
}
for _ in 0..<warmup { _ = try trainer.trainStep() }
MallocInterposerSwift.reset()
MallocInterposerSwift.hook()
for _ in 0..<steps { _ = try trainer.trainStep() }
MallocInterposerSwift.unhook()
let s = MallocInterposerSwift.getStatistics()
print("model: \(image ? (conditional ? "realnvp-small, class-conditional" : "realnvp-small") + (batchNorm ? ", batch norm" : "") : small ? "small" : "seed"), threads \(threads), \(reproducible ? "exact" : "default") mode, \(steps) steady-state steps")
print("mallocs: \(s.mallocCount) (\(s.mallocBytesCount) bytes), frees: \(s.freeCount)")
print("per step: \(Double(s.mallocCount) / Double(steps)) allocations")
exit(s.mallocCount == 0 ? 0 : 1)
