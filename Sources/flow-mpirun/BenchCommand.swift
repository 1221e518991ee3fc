import ArgumentParser
import CFlowSupport
import FlowCore
import FlowDistributed
import Foundation

/// `flow-mpirun bench`: training throughput and its time split for a sweep of thread counts (and, under
/// mpirun, the current ranks), allreduce latency and bandwidth with an α–β fit, and a scaling model.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure training throughput, its time split, allreduce cost, and predict scaling.",
        discussion: """
            Times steady-state training steps of the configured model (default: the seed model, batch 256) on \
            synthetic data: warm-up steps, then --repeats measurements of --steps steps each; reports the median \
            and the spread (min–max) of samples/s, GFLOP/s from the analytic FLOP count, and the time per step of \
            each phase (compute = forward + backward on the workers, intra-node reduction, allreduce exposed after \
            the backward pass, optimiser). Under mpirun the global batch is split across the ranks.
              flow-mpirun bench --threads 1,2
              mpirun -np 2 flow-mpirun bench --threads 1 --allreduce --compare-overlap --predict
            """)

    @Option(help: "Thread counts to sweep, comma-separated (default: 1 and the available cores).") var threads: String?
    @Option(help: "Features D of the synthetic data (2: moons; otherwise Gaussian).") var dim: Int = 2
    @Option(help: "Coupling layers.") var couplings: Int = 6
    @Option(help: "Hidden units.") var hidden: Int = 256
    @Option(name: .customLong("hidden-layers"), help: "Hidden layers of s and t.") var hiddenLayers: Int = 4
    @OptionGroup(title: "Image flows (synthetic 1×28×28 images)") var architecture: ArchitectureOptions
    @Option(name: .customLong("batch-size"), help: "Global batch size (default 256; 64 for image flows).") var batchSizeOption: Int?
    var batchSize: Int { batchSizeOption ?? (architecture.arch.map { $0 != .mlp } == true ? 64 : 256) }
    @Option(help: "Steps per measurement.") var steps: Int = 20
    @Option(help: "Warm-up steps before measuring.") var warmup: Int = 5
    @Option(help: "Measurements (the median is reported).") var repeats: Int = 5
    @Flag(help: "Exact mode (--reproducible) instead of the default mode.") var reproducible = false
    @Option(name: .customLong("ema-momentum"), help: "Parameter average as in train (default 0.99; 0 = off).") var emaMomentum: Double = 0.99
    @Option(help: "Overlap the allreduce with the backward pass: auto (on across hosts, off on one host) | on | off.")
    var overlap: OverlapSetting = .auto
    @Flag(name: .customLong("shard-optimizer"), inversion: .prefixedNo,
          help: "Without overlap, shard the optimiser over the ranks (default on; --no-shard-optimizer replicates it, for comparison).")
    var shardOptimizer = true
    @Flag(name: .customLong("compare-overlap"), help: "With several ranks, measure with and without overlapping the allreduce, to report the hidden share.")
    var compareOverlap = false
    @Flag(help: "Measure allreduce latency and bandwidth (1 KiB … 64 MiB) and fit the ring model t = 2(p−1)α + 2(p−1)/p · n/β.")
    var allreduce = false
    @Flag(name: .customLong("predict"),
          help: "Print predicted weak- and strong-scaling efficiency for 2 … 1024 nodes.") var predict = false
    @Flag(help: "Measure this core's sgemm rate on exactly the step's matrix products (the roofline) and report each step's efficiency against it.")
    var roofline = false
    @Flag(help: "Also time whole epochs of the real `train` loop (shuffle, validation, checkpoints every 10 epochs, best.safetensors, metrics) on moons: the throughput a user sees.")
    var train = false
    @Option(name: .customLong("train-epochs"), help: "With --train: epochs of the long run; its time minus a 2-epoch run's, per epoch, is reported.")
    var trainEpochs: Int = 12
    @Option(name: .customLong("train-out"), help: ArgumentHelp("With --train: where the timed runs write (replaced).", valueName: "dir"))
    var trainOut: String = "/tmp/flow-mpirun-bench-train"
    @Option(name: .customLong("train-validate-every"), help: "With --train: the runs' --validate-every (default 1: every epoch, as train).")
    var trainValidateEvery: Int = 1
    @Option(help: ArgumentHelp("Write the results as JSON to this file.", valueName: "file")) var json: String?
    @Option(help: ArgumentHelp("Write the throughput table as CSV to this file.", valueName: "file")) var csv: String?
    @Option(help: ArgumentHelp("Render a scaling sweep's CSV (from cluster/scaling.sh) instead of measuring.", valueName: "csv"))
    var report: String?
    @Option(help: ArgumentHelp("With --report: the SVG plot of samples/s and efficiency against workers.", valueName: "file"))
    var svg: String?
    @Option(help: ArgumentHelp("With --report: the markdown table.", valueName: "file")) var markdown: String?
    @Option(name: .customLong("alpha-us"),
            help: ArgumentHelp("With --report: the fitted α (µs per message) of the network, to add the model's prediction and its error.",
                               valueName: "µs"))
    var alphaMicroseconds: Double?
    @Option(name: .customLong("beta-gbs"), help: ArgumentHelp("With --report: the fitted β (GB/s) of the network.", valueName: "GB/s"))
    var betaGigabytes: Double?
    @Option(name: .customLong("hidden-share"),
            help: ArgumentHelp("With --report: the measured share of the allreduce hidden behind the backward pass (0…1).", valueName: "share"))
    var hiddenShare: Double = 0
    @Flag(name: .customLong("sharded-optimizer"),
          help: "With --report: the points ran with the optimiser sharded over the ranks (one host, --overlap auto).")
    var shardedOptimizer = false

    struct Row: Codable {
        var ranks: Int
        var threads: Int
        var mode: String
        var overlap: Bool
        var samplesPerSecond: Double
        var samplesPerSecondMin: Double
        var samplesPerSecondMax: Double
        var gflops: Double
        var msPerStep: Double
        var computeMs: Double
        var reductionMs: Double
        var allreduceMs: Double
        var optimizerMs: Double
    }

    struct AllreducePoint: Codable { var bytes: Int; var seconds: Double }

    struct Fit: Codable {
        /// Per-message latency α (s) and bandwidth β (bytes/s) of the ring model t = 2(p−1)α + 2(p−1)/p · n/β.
        var alpha: Double
        var beta: Double
        var ranks: Int
    }

    struct Report: Codable {
        var machine: String
        var blas: String
        var parameters: Int
        var flopsPerSample: Int
        var batchSize: Int
        var rows: [Row]
        var allreduce: [AllreducePoint]?
        var fit: Fit?
    }

    /// Range checks of the measurement flags (our errors: exit status 1, as `train`'s).
    func checkRanges() throws {
        if steps < 1 { throw FlowConfigurationError(field: "steps", value: "\(steps)", message: "need at least 1 step per measurement") }
        if repeats < 1 { throw FlowConfigurationError(field: "repeats", value: "\(repeats)", message: "need at least 1 measurement") }
        if warmup < 0 { throw FlowConfigurationError(field: "warmup", value: "\(warmup)", message: "must be 0 or more") }
        if batchSize < 1 { throw FlowConfigurationError(field: "batch-size", value: "\(batchSize)", message: "need at least 1 row per batch") }
    }

    func threadList() throws -> [Int] {
        guard let threads else { return Array(Set([1, min(WorkerPool.maximumCount, WorkerPool.availableCores)])).sorted() }
        let list = threads.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !list.isEmpty, list.allSatisfy({ ($0 ?? 0) >= 1 }) else {
            throw FlowConfigurationError(field: "threads", value: "'\(threads)'", message: "use a comma-separated list of positive counts, e.g. 1,2")
        }
        if let big = list.first(where: { $0! > WorkerPool.maximumCount }) {
            throw FlowConfigurationError(field: "threads", value: "\(big!)", message: "at most \(WorkerPool.maximumCount) worker threads per rank (libdispatch's thread limit on Linux)")
        }
        return list.map { $0! }
    }

    mutating func run() throws {
        if let report {
            var network: ScalingReport.Network?
            if let a = alphaMicroseconds, let b = betaGigabytes {
                guard a >= 0, b > 0, (0...1).contains(hiddenShare) else {
                    throw ValidationError("invalid --alpha-us/--beta-gbs/--hidden-share: need α ≥ 0, β > 0 and a share in 0…1")
                }
                let seed = FlowConfiguration(dim: dim, couplings: couplings, hidden: hidden, hiddenLayers: hiddenLayers)
                network = ScalingReport.Network(alpha: a * 1e-6, beta: b * 1e9, hiddenShare: hiddenShare,
                                                gradientBytes: Double(4 * (try ParameterLayout(seed)).storageCount),
                                                cores: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), shardedOptimizer: shardedOptimizer)
            } else if alphaMicroseconds != nil || betaGigabytes != nil {
                throw ValidationError("--alpha-us and --beta-gbs go together")
            }
            do { try ScalingReport.render(csv: report, svg: svg, markdown: markdown, network: network) } catch {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                throw ExitCode.failure
            }
            return
        }
        let ctx = try RunContext()
        let c = self
        let (threadCounts, model) = ctx.setUp { () throws -> ([Int], FlowConfiguration) in
            try c.checkRanges()
            var m = FlowConfiguration(dim: c.dim, couplings: c.couplings, hidden: c.hidden, hiddenLayers: c.hiddenLayers)
            if let image = try c.architecture.architecture(input: ImageShape(channels: 1, height: 28, width: 28)) {
                m = .imageFlow(image, preprocessing: .none)
            }
            try m.validate()
            // The thread counts decide how many measurements, so collectives, each rank takes part in: they must agree.
            let threads = try c.threadList()
            ctx.sharedContent = RunContext.comparable(Array(CommandLine.arguments.dropFirst()), maskThreads: false)
                + ["thread counts " + threads.map(String.init).joined(separator: ",")]
            return (threads, m)
        }
        do {
            try c.execute(ctx, threadCounts: threadCounts, model: model)
        } catch { ctx.fail(error) }
        ctx.finish()
    }

    func execute(_ ctx: RunContext, threadCounts: [Int], model: FlowConfiguration) throws {
        let R = ctx.worldSize
        let flops = model.trainingFLOPsPerSample
        ctx.say("""
            flow-mpirun bench: \(Checkpoint.describe(model)), \((try ParameterLayout(model)).parameterCount) parameters, \
            \(String(format: "%.3f", Double(flops) / 1e6)) MFLOP per training sample (forward + backward matrix products)
            global batch \(batchSize), \(R) rank\(R > 1 ? "s" : "") on \(ctx.communicator.hostCount) host\(ctx.communicator.hostCount > 1 ? "s" : ""), BLAS \(BLASRuntime.coreName), \(warmup) warm-up + \(repeats) × \(steps) steps
            """)
        // Batch normalisation's statistics are combined inside the backward pass: such runs never overlap (as in train).
        let batchNorm = model.image?.batchNorm == true
        if batchNorm && overlap == .on {
            throw ValidationError("--overlap on: batch normalisation (--image-batch-norm) combines its statistics across ranks inside the backward pass, which the overlapped allreduce cannot run beside; use --overlap auto or off")
        }
        var rows: [Row] = []
        for t in threadCounts {
            let settings = R > 1 && compareOverlap && !reproducible && !batchNorm ? [true, false] : [overlap.resolved(hosts: ctx.communicator.hostCount)]
            for overlap in settings {
                rows.append(try measure(ctx, model: model, threads: t, overlap: overlap))
            }
        }
        if ctx.isRoot { printTable(rows, flops: flops) }
        if roofline { try measureRoofline(ctx, rows: rows, model: model) }
        if train { try measureTraining(ctx, stepRows: rows, model: model) }
        var points: [AllreducePoint]?
        var fit: Fit?
        if allreduce {
            let measured = try measureAllreduce(ctx)
            points = measured
            if R > 1 {
                fit = Self.fitRing(measured, ranks: R)
                if ctx.isRoot { printAllreduce(measured, fit: fit!) }
            } else {
                ctx.say("allreduce: one rank, nothing to measure (run under mpirun -np 2 or more)")
            }
        }
        if predict, let row = rows.first(where: { $0.overlap }) ?? rows.first {
            let overlapShare: Double? = {
                guard compareOverlap, R > 1, let on = rows.first(where: { $0.overlap && $0.threads == row.threads }),
                      let off = rows.first(where: { !$0.overlap && $0.threads == row.threads }), off.allreduceMs > 0 else { return nil }
                return max(0, min(1, 1 - on.allreduceMs / off.allreduceMs))
            }()
            if ctx.isRoot { printPrediction(row: row, ranks: R, parameters: (try ParameterLayout(model)).storageCount, fit: fit, overlapShare: overlapShare) }
        }
        guard ctx.isRoot else { return }
        let report = Report(machine: Self.machine(), blas: BLASRuntime.coreName, parameters: (try ParameterLayout(model)).parameterCount,
                            flopsPerSample: flops, batchSize: batchSize, rows: rows, allreduce: points, fit: fit)
        if let json {
            let e = JSONEncoder()
            e.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicFile.write(Array(try e.encode(report)) + [10], to: json)
        }
        if let csv {
            var lines = ["ranks,threads,mode,overlap,samples_per_s,samples_per_s_min,samples_per_s_max,gflops,ms_per_step,compute_ms,reduction_ms,allreduce_ms,optimizer_ms"]
            for r in rows {
                lines.append([String(r.ranks), String(r.threads), r.mode, String(r.overlap), f(r.samplesPerSecond), f(r.samplesPerSecondMin),
                              f(r.samplesPerSecondMax), f(r.gflops), f(r.msPerStep), f(r.computeMs), f(r.reductionMs), f(r.allreduceMs),
                              f(r.optimizerMs)].joined(separator: ","))
            }
            try AtomicFile.write(Array((lines.joined(separator: "\n") + "\n").utf8), to: csv)
        }
    }

    func f(_ x: Double) -> String { String(format: "%.3f", x) }

    /// `--roofline`: rank 0 measures the step's sgemm mix on one core at each thread count's rows per worker and
    /// prints the step's efficiency: GFLOP/s ÷ (T × the roofline).
    func measureRoofline(_ ctx: RunContext, rows: [Row], model: FlowConfiguration) throws {
        if ctx.isRoot {
            print("roofline: one core's sgemm rate on the step's matrix products (BLAS \(BLASRuntime.coreName), OPENBLAS_CORETYPE \(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "unset"))")
            print("ranks × threads  rows/worker  sgemm GFLOP/s/core  step GFLOP/s  efficiency")
            for r in rows {
                let perWorker = (batchSize + r.ranks * r.threads - 1) / (r.ranks * r.threads)
                let peak = GEMMRoofline.measure(model: model, rows: perWorker)
                let stepPerRank = r.gflops / Double(r.ranks)
                print(String(format: "%5d × %-7d  %11d  %18.1f  %12.1f  %9.1f%%", r.ranks, r.threads, perWorker, peak, stepPerRank,
                             100 * stepPerRank / (Double(r.threads) * peak)))
            }
        }
        try ctx.communicator.barrier()
    }

    /// `--train`: for every thread count, the real `train` (the seed's data set, this model, default checkpointing:
    /// every 10 epochs and best.safetensors whenever validation improves) for 2 and `--train-epochs` epochs; the
    /// difference of their wall times gives seconds per epoch without the set-up and the summary, whose samples/s is
    /// compared with the step throughput measured above.
    func measureTraining(_ ctx: RunContext, stepRows: [Row], model: FlowConfiguration) throws {
        guard model.dim == 2 else {
            ctx.say("--train: trains on moons, which has D = 2; skipped for --dim \(model.dim)")
            return
        }
        guard trainEpochs > 2 else { throw ValidationError("invalid --train-epochs \(trainEpochs): need more than 2") }
        var lines: [String] = []
        for r in stepRows where r.overlap == stepRows[0].overlap {
            var seconds: [Int: Double] = [:], stepSeconds: [Int: Double] = [:], validationSeconds: [Int: Double] = [:]
            var rowsPerEpoch = 0
            var checkpointCost: Double?
            for epochs in [2, trainEpochs] {
                var args = ["--out", "\(trainOut)/threads\(r.threads)-epochs\(epochs)", "--force", "--epochs", "\(epochs)", "--threads", "\(r.threads)",
                            "--quiet", "--no-plots", "--couplings", "\(couplings)", "--hidden", "\(hidden)", "--hidden-layers",
                            "\(hiddenLayers)", "--batch-size", "\(batchSize)", "--ema-momentum", "\(emaMomentum)",
                            "--validate-every", "\(trainValidateEvery)"]
                if reproducible { args.append("--reproducible") }
                let command = try TrainCommand.parse(args)
                let setup = try command.prepare(ctx)
                rowsPerEpoch = setup.trainer.trainRows
                try ctx.communicator.barrier()
                let t0 = ctx.communicator.wallTime()
                var steps = 0.0, validation = 0.0
                var epochEnds: [Double] = []
                try command.train(ctx, setup, printSummary: false) { report in
                    steps += report.seconds
                    validation += report.validationSeconds
                    epochEnds.append(ctx.communicator.wallTime())
                }
                if epochs == trainEpochs { checkpointCost = Self.checkpointCost(epochEnds: epochEnds, every: command.checkpointEvery ?? RunDirectory.RunOptions().checkpointEvery) }
                try ctx.communicator.barrier()
                seconds[epochs] = ctx.communicator.wallTime() - t0
                stepSeconds[epochs] = steps
                validationSeconds[epochs] = validation
            }
            let n = Double(trainEpochs - 2)
            let perEpoch = (seconds[trainEpochs]! - seconds[2]!) / n
            let stepsPerEpoch = (stepSeconds[trainEpochs]! - stepSeconds[2]!) / n
            let validationPerEpoch = (validationSeconds[trainEpochs]! - validationSeconds[2]!) / n
            let rate = Double(rowsPerEpoch) / perEpoch
            let checkpointText = checkpointCost.map { String(format: "%.0f", 1e3 * $0) } ?? "–"
            lines.append(String(format: "%5d × %-7d  %15.0f  %14.0f  %11.1f%%  %9.0f  %12.0f  %10.0f", r.ranks, r.threads, rate, r.samplesPerSecond,
                                100 * rate / r.samplesPerSecond, 1e3 * stepsPerEpoch, 1e3 * validationPerEpoch,
                                1e3 * (perEpoch - stepsPerEpoch - validationPerEpoch))
                         + String(repeating: " ", count: max(1, 15 - checkpointText.count)) + checkpointText)
        }
        ctx.say("train: epochs \(trainEpochs) − 2 of the real loop (moons, \(batchSize) per batch), checkpoints every 10 epochs + best; ms per epoch"
            + " (checkpoint ms: per checkpoint, the two epochs after it beyond the median epoch)\n"
            + "ranks × threads  train samples/s  step samples/s  train ÷ step  steps ms  validation ms  other ms  checkpoint ms\n"
            + lines.joined(separator: "\n"))
    }

    /// What a checkpoint costs the epochs around it (seconds): for each checkpoint written at the end of epoch k
    /// (k = every, 2·every, … before the last epoch), the wall time of epochs k + 1 and k + 2 (an epoch's wall time:
    /// from the previous epoch's report to its own, so it includes the snapshot taken at the previous epoch's end
    /// and any slowdown while the file is written in the background) beyond twice the median epoch; the mean over
    /// the checkpoints, or nil when the run has none with two epochs after it. Measured within one run against its
    /// own median, so a noisy machine's drift between runs does not enter.
    /// - Parameter epochEnds: the wall-clock time (seconds) of each epoch's report, epoch 1 first.
    static func checkpointCost(epochEnds: [Double], every: Int) -> Double? {
        guard epochEnds.count >= 3 else { return nil }
        let walls = (1..<epochEnds.count).map { epochEnds[$0] - epochEnds[$0 - 1] }  // walls[i]: epoch i + 2
        let median = walls.sorted()[walls.count / 2]
        var costs: [Double] = []
        var k = every
        while k + 2 <= epochEnds.count {
            costs.append(walls[k - 1] + walls[k] - 2 * median)  // epochs k + 1 and k + 2
            k += every
        }
        return costs.isEmpty ? nil : costs.reduce(0, +) / Double(costs.count)
    }

    /// Median of `repeats` measurements of `steps` steps each, after warm-up.
    func measure(_ ctx: RunContext, model: FlowConfiguration, threads: Int, overlap: Bool) throws -> Row {
        let rowsNeeded = batchSize * (warmup + repeats * steps + 1)
        let data: Matrix<Double>
        if model.dim == 2 {
            data = ToyDataset.moons.generate(count: rowsNeeded, seed: 0)
        } else if model.image != nil {
            // Synthetic images: logits of uniform pixels, as dequantised data look after preprocessing.
            let r = RandomStream(seed: 0, purpose: .auxiliary)
            data = Matrix(rows: rowsNeeded, columns: model.dim, values: (0..<(rowsNeeded * model.dim)).map {
                let u = 0.05 + 0.9 * r.uniform(UInt64($0))
                return log(u / (1 - u))
            })
        } else {
            let r = RandomStream(seed: 0, purpose: .auxiliary)
            data = Matrix(rows: rowsNeeded, columns: model.dim, values: (0..<(rowsNeeded * model.dim)).map { r.normal(UInt64($0)) })
        }
        var config = TrainingConfiguration(model: model, epochs: 1, batchSize: batchSize, learningRate: 1e-4, seed: 0,
                                           validationFraction: 0, reproducible: reproducible)
        config.microBatch = 64
        config.emaMomentum = emaMomentum == 0 ? nil : emaMomentum  // as `train` (its update every 10th step is timed)
        try config.validate()
        let trainer = try DataParallelTrainer(configuration: config, normalizer: try Normalizer<Float>.fit(data), train: data,
                                              validation: nil, communicator: ctx.communicator, threads: threads,
                                              options: TrainerOptions(overlapAllreduce: overlap, shardOptimizer: shardOptimizer))
        for _ in 0..<warmup { _ = try trainer.trainStep() }
        var rates: [Double] = []
        var splits: [StepTimings] = []
        for _ in 0..<repeats {
            try ctx.communicator.barrier()
            trainer.timings = StepTimings()
            let t0 = ctx.communicator.wallTime()
            for _ in 0..<steps { _ = try trainer.trainStep() }
            let seconds = ctx.communicator.wallTime() - t0
            rates.append(Double(steps * batchSize) / seconds)
            splits.append(trainer.timings)
        }
        let order = rates.indices.sorted { rates[$0] < rates[$1] }
        let median = order[order.count / 2]
        let tm = splits[median]
        let per = 1e3 / Double(tm.steps)
        return Row(ranks: ctx.worldSize, threads: threads, mode: reproducible ? "exact" : "default", overlap: trainer.overlapAllreduce,
                   samplesPerSecond: rates[median], samplesPerSecondMin: rates[order.first!], samplesPerSecondMax: rates[order.last!],
                   gflops: rates[median] * Double(model.trainingFLOPsPerSample) / 1e9, msPerStep: 1e3 * Double(batchSize) / rates[median],
                   computeMs: tm.compute * per, reductionMs: tm.intraNodeReduction * per, allreduceMs: tm.allreduce * per,
                   optimizerMs: tm.optimizer * per)
    }

    func printTable(_ rows: [Row], flops: Int) {
        print("ranks × threads  mode     overlap  samples/s (min–max)        GFLOP/s  ms/step  compute  reduce  allreduce  optimiser")
        for r in rows {
            print(String(format: "%5d × %-7d  %-7@  %-7@  %8.0f (%6.0f–%6.0f)  %7.1f  %7.2f  %7.2f  %6.2f  %9.2f  %9.2f",
                         r.ranks, r.threads, r.mode, r.ranks > 1 ? (r.overlap ? "yes" : "no") : "–", r.samplesPerSecond,
                         r.samplesPerSecondMin, r.samplesPerSecondMax, r.gflops, r.msPerStep, r.computeMs, r.reductionMs,
                         r.allreduceMs, r.optimizerMs))
        }
        if let one = rows.first(where: { $0.threads == 1 && $0.overlap == rows[0].overlap }) {
            for r in rows where r.threads > 1 && r.overlap == one.overlap {
                let efficiency = 100 * r.samplesPerSecond / (Double(r.threads) * one.samplesPerSecond)
                print(String(format: "parallel efficiency 1 → %d threads: %.1f%%%@", r.threads, efficiency,
                             efficiency > 102 ? " (above 100 %: the cores differ or the machine was busy; compare alternating runs)" : ""))
            }
        }
        if let on = rows.first(where: { $0.ranks > 1 && $0.overlap }), let off = rows.first(where: { $0.ranks > 1 && !$0.overlap && $0.threads == on.threads }),
           off.allreduceMs > 0 {
            print(String(format: "allreduce: %.2f ms per step blocking, %.2f ms exposed with overlap: %.0f%% hidden behind the backward pass",
                         off.allreduceMs, on.allreduceMs, 100 * max(0, 1 - on.allreduceMs / off.allreduceMs)))
        }
    }

    /// Median time of an in-place Float allreduce for message sizes 1 KiB … 64 MiB.
    func measureAllreduce(_ ctx: RunContext) throws -> [AllreducePoint] {
        var points: [AllreducePoint] = []
        var bytes = 1024
        while bytes <= 64 << 20 {
            let n = bytes / 4
            let buffer = AlignedBuffer<Float>(count: n)
            let reps = max(3, min(200, (64 << 20) / bytes / 4))
            var times: [Double] = []
            for _ in 0..<reps {
                try ctx.communicator.barrier()
                let t0 = ctx.communicator.wallTime()
                try ctx.communicator.allreduceSum(buffer.buffer)
                times.append(ctx.communicator.wallTime() - t0)
            }
            // Every rank uses rank 0's clock-free median of its own times; agree on the maximum.
            times.sort()
            var median = [Int64(times[times.count / 2] * 1e9)]
            try median.withUnsafeMutableBufferPointer { try ctx.communicator.allreduceMax($0) }
            points.append(AllreducePoint(bytes: bytes, seconds: Double(median[0]) * 1e-9))
            bytes *= 4
        }
        return points
    }

    /// Least-squares fit of t = a + b·n (weighted by 1/t; with a negative intercept, a is the smallest message's time and b
    /// is refitted through it), then the ring model's α = a / (2(p−1)), β = 2(p−1)/(p·b).
    static func fitRing(_ points: [AllreducePoint], ranks p: Int) -> Fit {
        let xs = points.map { Double($0.bytes) }, ys = points.map(\.seconds)
        // Weighted by 1/t so that small messages (latency) count as much as large ones (bandwidth).
        let w = ys.map { 1 / max($0, 1e-9) }
        let sw = w.reduce(0, +)
        let mx = zip(w, xs).reduce(0) { $0 + $1.0 * $1.1 } / sw, my = zip(w, ys).reduce(0) { $0 + $1.0 * $1.1 } / sw
        var sxy = 0.0, sxx = 0.0
        for i in xs.indices { sxy += w[i] * (xs[i] - mx) * (ys[i] - my); sxx += w[i] * (xs[i] - mx) * (xs[i] - mx) }
        var b = max(sxy / sxx, 1e-15), a = my - b * mx
        if a <= 0 {
            // A negative intercept (large messages slower per byte than mid-sized ones, e.g. beyond the caches):
            // take the latency from the smallest message and refit the slope through it.
            a = ys.first ?? 0
            var num = 0.0, den = 0.0
            for i in xs.indices { num += w[i] * xs[i] * (ys[i] - a); den += w[i] * xs[i] * xs[i] }
            b = max(num / den, 1e-15)
        }
        let steps = Double(2 * (p - 1))
        return Fit(alpha: a / steps, beta: steps / (Double(p) * b), ranks: p)
    }

    /// Ring allreduce time of `bytes` on `p` ranks: 2(p−1)α + 2(p−1)/p · n/β.
    static func ringTime(bytes: Double, ranks p: Int, alpha: Double, beta: Double) -> Double {
        p < 2 ? 0 : 2 * Double(p - 1) * alpha + 2 * Double(p - 1) / Double(p) * bytes / beta
    }

    func printAllreduce(_ points: [AllreducePoint], fit: Fit) {
        print("allreduce (\(fit.ranks) ranks), median of repeated in-place Float sums:")
        print("     bytes      time (µs)   algorithmic bandwidth (MB/s)   ring model (µs)")
        for pt in points {
            let model = Self.ringTime(bytes: Double(pt.bytes), ranks: fit.ranks, alpha: fit.alpha, beta: fit.beta)
            print(String(format: "%10d  %12.1f  %28.1f  %16.1f", pt.bytes, pt.seconds * 1e6, Double(pt.bytes) / pt.seconds / 1e6, model * 1e6))
        }
        print(String(format: "fit: α = %.2f µs per message, β = %.2f GB/s (ring model t = 2(p−1)α + 2(p−1)/p · n/β)", fit.alpha * 1e6, fit.beta / 1e9))
    }

    /// Weak scaling keeps the per-node batch; strong scaling divides the global batch. Per-sample compute
    /// time and the optimiser time come from the measured row; the allreduce from the ring model.
    func printPrediction(row: Row, ranks R: Int, parameters: Int, fit: Fit?, overlapShare: Double?) {
        let bytes = Double(4 * parameters)
        let perNodeBatch = Double(batchSize) / Double(R)
        let computePerSample = row.computeMs * 1e-3 / perNodeBatch
        let optimizer = row.optimizerMs * 1e-3
        let hidden = overlapShare ?? 0
        var networks: [(String, Double, Double)] = [
            ("10 Gb/s Ethernet (α 50 µs, β 1.1 GB/s)", 50e-6, 1.1e9),
            ("25 Gb/s Ethernet (α 25 µs, β 2.8 GB/s)", 25e-6, 2.8e9),
            ("100 Gb/s (α 5 µs, β 11 GB/s)", 5e-6, 11e9),
        ]
        if let fit { networks.insert(("fitted here (α \(String(format: "%.1f", fit.alpha * 1e6)) µs, β \(String(format: "%.2f", fit.beta / 1e9)) GB/s)", fit.alpha, fit.beta), at: 0) }
        print(String(format: "scaling model: compute %.2f µs per sample at %d thread(s), optimiser %.2f ms per step, gradient %.1f MB, %.0f%% of the allreduce hidden",
                     computePerSample * 1e6, row.threads, optimizer * 1e3, bytes / 1e6, 100 * hidden))
        for (name, alpha, beta) in networks {
            print("\(name): predicted efficiency (weak: batch \(batchSize) per node; strong: global batch \(batchSize))")
            print("   nodes    weak    strong")
            var p = 2
            while p <= 1024 {
                let ar = (1 - hidden) * Self.ringTime(bytes: bytes, ranks: p, alpha: alpha, beta: beta)
                let base = computePerSample * Double(batchSize) + optimizer
                let weak = base / (base + ar)
                let strong = base / (Double(p) * (computePerSample * Double(batchSize) / Double(p) + optimizer + ar))
                print(String(format: "%8d  %6.1f%%  %7.1f%%", p, 100 * weak, 100 * strong))
                p *= 2
            }
        }
        if R > 1, let fit {
            let predicted = computePerSample * perNodeBatch + optimizer + (1 - hidden) * Self.ringTime(bytes: bytes, ranks: R, alpha: fit.alpha, beta: fit.beta)
            let measured = row.msPerStep * 1e-3
            print(String(format: "check on this layout (%d ranks × %d threads): predicted %.2f ms per step, measured %.2f ms: error %+.1f%%",
                         R, row.threads, predicted * 1e3, measured * 1e3, 100 * (predicted - measured) / measured))
        }
    }

    static func machine() -> String {
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
        return "\(cpu), \(sysconf(Int32(_SC_NPROCESSORS_ONLN))) CPUs"
    }
}
