import FlowCore
import Foundation
import Testing
@testable import flow_mpirun

/// `mpirun -np N flow-mpirun …` against single-process runs: bytes in exact mode, agreement in default
/// mode, uneven data, a mismatched rank, a killed rank.
@Suite("MPI integration (mpirun)", .serialized)
struct MPIToolTests {
    static var mpirun: String? {
        for p in ["/usr/bin/mpirun", "/usr/local/bin/mpirun", "/opt/homebrew/bin/mpirun"] where Tool.exists(p) { return p }
        return nil
    }

    /// `mpirun -np n [--oversubscribe] [--allow-run-as-root] --bind-to none flow-mpirun args`.
    static func launch(_ n: Int, _ args: [String], environment: [String: String] = [:], timeout: Double = 300) throws -> Tool.Result {
        try Tool.run(mpirun!, mpirunArguments(n, environment: environment) + [Tool.binary] + args, timeout: timeout)
    }

    /// `-np n --oversubscribe --bind-to none --mca mpi_yield_when_idle 1 [--allow-run-as-root] [-x K=V …]`.
    static func mpirunArguments(_ n: Int, environment: [String: String]) -> [String] {
        var a = ["-np", String(n), "--oversubscribe", "--bind-to", "none", "--mca", "mpi_yield_when_idle", "1"]
        if getuid() == 0 { a.append("--allow-run-as-root") }
        for (k, v) in environment { a += ["-x", "\(k)=\(v)"] }
        return a
    }

    /// `cluster/launch.sh -n ranks args` with the tests' flow-mpirun, started as a shell starts it: what the
    /// docs tell users to run, with the Open MPI settings it adds (docs/stopping.md).
    static func launchScript(_ ranks: Int, _ args: [String], environment: [String: String] = [:], log: String) throws -> SignalDriver {
        var env = ["FLOW_BIN": Tool.binary]
        for (k, v) in environment { env[k] = v }
        return try SignalDriver("\(MultiHostTests.repository)/cluster/launch.sh", ["-n", String(ranks)] + args, environment: env, log: log)
    }

    static func small(_ out: String, _ extra: [String]) -> [String] {
        // 301 rows: 241 training rows, not divisible by the batch (64) or by 2 or 3 ranks.
        ["train", "--samples", "301", "--epochs", "3", "--hidden", "16", "--hidden-layers", "2", "--couplings", "4",
         "--batch-size", "64", "--lr", "1e-3", "--out", out, "--no-plots", "--quiet"] + extra
    }

    @Test("exact mode: 1×1, 1×2, 2×1, 2×2 and 3×1 layouts write the same bytes")
    func exactModeLayouts() throws {
        guard Self.mpirun != nil else { print("skipped: mpirun not found (apt install openmpi-bin)"); return }
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let exact = ["--reproducible", "--micro-batch", "16"]
        let single = try Tool.flow(Self.small("\(dir)/1x1", exact + ["--threads", "1"]))
        #expect(single.status == 0, "\(single.output)")
        let reference = try #require(Tool.bytes("\(dir)/1x1/model.safetensors"))
        for (ranks, threads) in [(1, 2), (2, 1), (2, 2), (3, 1)] {
            let name = "\(ranks)x\(threads)"
            let r = ranks == 1 ? try Tool.flow(Self.small("\(dir)/\(name)", exact + ["--threads", String(threads)]))
                               : try Self.launch(ranks, Self.small("\(dir)/\(name)", exact + ["--threads", String(threads)]))
            #expect(r.status == 0, "\(name): \(r.output)")
            #expect(Tool.bytes("\(dir)/\(name)/model.safetensors") == reference, "\(name) differs from 1×1")
        }
        // Sampling: identical files under any layout.
        let s1 = try Tool.flow(["sample", "--model", "\(dir)/1x1", "-n", "1000", "--out", "\(dir)/s1.csv", "--threads", "1"])
        let s3 = try Self.launch(3, ["sample", "--model", "\(dir)/1x1", "-n", "1000", "--out", "\(dir)/s3.csv", "--threads", "1"])
        #expect(s1.status == 0 && s3.status == 0, "\(s3.output)")
        #expect(Tool.bytes("\(dir)/s1.csv") == Tool.bytes("\(dir)/s3.csv"))
    }

    @Test("conditional flows (--condition class; --context-columns on a file): exact mode writes the same bytes at 1×1, 1×2, 2×1 and 2×2; sample --class and evaluate agree across layouts")
    func conditionalLayouts() throws {
        guard Self.mpirun != nil else { print("skipped: mpirun not found"); return }
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A file of 150 rows: x (2 features), then 2 context columns (one a function of x, one a label-like value).
        var csv = "x0,x1,c0,c1\n"
        let moons = ToyDataset.moons.generate(count: 150, seed: 7)
        let labels = ToyDataset.moons.labels(count: 150, seed: 7)!
        for i in 0..<150 { csv += "\(moons[i, 0]),\(moons[i, 1]),\(Double(labels[i]) * 3 - 1),\(moons[i, 0] * 0.5 + 2)\n" }
        try csv.write(toFile: "\(dir)/xc.csv", atomically: true, encoding: .utf8)
        let exact = ["--reproducible", "--micro-batch", "16"]
        // The small run's arguments; a file brings its own rows (no --samples).
        func small(_ out: String, _ extra: [String]) -> [String] {
            let args = Self.small(out, extra)
            guard extra.contains("--data"), let i = args.firstIndex(of: "--samples") else { return args }
            return Array(args[..<i] + args[(i + 2)...])
        }
        for (name, flags) in [("class", ["--condition", "class"]), ("columns", ["--data", "\(dir)/xc.csv", "--context-columns", "2"])] {
            let single = try Tool.flow(small("\(dir)/\(name)-1x1", exact + flags + ["--threads", "1"]))
            try #require(single.status == 0, "\(single.output)")
            let reference = try #require(Tool.bytes("\(dir)/\(name)-1x1/model.safetensors"))
            for (ranks, threads) in [(1, 2), (2, 1), (2, 2)] {
                let layout = "\(name)-\(ranks)x\(threads)"
                let args = small("\(dir)/\(layout)", exact + flags + ["--threads", String(threads)])
                let r = ranks == 1 ? try Tool.flow(args) : try Self.launch(ranks, args)
                #expect(r.status == 0, "\(layout): \(r.output)")
                #expect(Tool.bytes("\(dir)/\(layout)/model.safetensors") == reference, "\(layout) differs from 1×1")
            }
            let model = try Checkpoint.load(path: "\(dir)/\(name)-1x1/model.safetensors").model
            #expect(model.contextFeatures == 2 && model.configuration.contextClasses == (name == "class" ? 2 : nil))
        }
        let sample = ["sample", "--model", "\(dir)/class-1x1", "-n", "700", "--class", "1", "--threads", "1", "--out"]
        let s1 = try Tool.flow(sample + ["\(dir)/s1.csv"])
        let s3 = try Self.launch(3, sample + ["\(dir)/s3.csv"])
        #expect(s1.status == 0 && s3.status == 0, "\(s1.output)\(s3.output)")
        #expect(Tool.bytes("\(dir)/s1.csv") != nil && Tool.bytes("\(dir)/s1.csv") == Tool.bytes("\(dir)/s3.csv"))
        let evaluate = ["evaluate", "--model", "\(dir)/columns-1x1", "--split", "all", "--json", "--threads", "1"]
        let e1 = try Tool.flow(evaluate), e2 = try Self.launch(2, evaluate)
        #expect(e1.status == 0 && e2.status == 0, "\(e1.output)\(e2.output)")
        #expect(e1.stdout == e2.stdout && e1.stdout.contains(#""conditioned_on":"the last 2 columns""#), "\(e1.stdout)")
    }

    @Test("--act-norm (one gradient bucket per transform): exact mode writes the same bytes at 1×1, 1×2 and 2×1; with 2 ranks overlapped buckets write the sharded optimiser's bytes")
    func actNormLayouts() throws {
        guard Self.mpirun != nil else { print("skipped: mpirun not found"); return }
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let exact = ["--act-norm", "--reproducible", "--micro-batch", "16"]
        let single = try Tool.flow(Self.small("\(dir)/1x1", exact + ["--threads", "1"]))
        try #require(single.status == 0, "\(single.output)")
        let reference = try #require(Tool.bytes("\(dir)/1x1/model.safetensors"))
        let two = try Tool.flow(Self.small("\(dir)/1x2", exact + ["--threads", "2"]))
        let ranks = try Self.launch(2, Self.small("\(dir)/2x1", exact + ["--threads", "1"]))
        #expect(two.status == 0 && ranks.status == 0, "\(two.output)\(ranks.output)")
        #expect(Tool.bytes("\(dir)/1x2/model.safetensors") == reference)
        #expect(Tool.bytes("\(dir)/2x1/model.safetensors") == reference)
        for overlap in ["on", "off"] {
            let r = try Self.launch(2, Self.small("\(dir)/\(overlap)", ["--act-norm", "--threads", "1", "--overlap", overlap]))
            #expect(r.status == 0, "\(r.output)")
        }
        #expect(Tool.bytes("\(dir)/on/model.safetensors") == Tool.bytes("\(dir)/off/model.safetensors"))
        let trained = try Checkpoint.load(path: "\(dir)/on/model.safetensors").model
        #expect(trained.tensor("actnorms.3.log_scale")?.contains { $0 != 0 } == true, "ActNorm's parameters were trained")
    }

    @Test("default mode: 2 ranks repeat bit for bit and agree with one process to 1e-5, allreduce blocking (one host's default) or overlapped")
    func defaultMode() throws {
        guard Self.mpirun != nil else { print("skipped: mpirun not found"); return }
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for name in ["a", "b"] {
            let r = try Self.launch(2, Self.small("\(dir)/\(name)", ["--threads", "1"]).filter { $0 != "--quiet" })
            #expect(r.status == 0, "\(r.output)")
            #expect(r.output.contains("1 host, reduce-scatter after the backward pass, sharded optimiser"), "\(r.output)")
        }
        #expect(Tool.bytes("\(dir)/a/model.safetensors") == Tool.bytes("\(dir)/b/model.safetensors"))
        let overlapped = try Self.launch(2, Self.small("\(dir)/c", ["--threads", "1", "--overlap", "on"]).filter { $0 != "--quiet" })
        #expect(overlapped.status == 0, "\(overlapped.output)")
        #expect(overlapped.output.contains("1 host, allreduce overlapped with the backward pass"), "\(overlapped.output)")
        #expect(try Tool.flow(Self.small("\(dir)/one", ["--threads", "1"])).status == 0)
        let one = try Checkpoint.load(path: "\(dir)/one/model.safetensors").model.parameters
        let scale = one.map { abs($0) }.max()!
        for name in ["a", "c"] {
            let multi = try Checkpoint.load(path: "\(dir)/\(name)/model.safetensors").model.parameters
            var worst: Float = 0
            for (x, y) in zip(multi, one) { worst = max(worst, abs(x - y) / scale) }
            #expect(worst < 1e-5, "2 ranks (\(name)) vs 1 process after 12 steps: max difference \(worst) of the largest parameter")
        }
        // With 2 ranks every gradient element is one addition a + b whichever collective makes it, and Adam is
        // element-wise: the sharded optimiser (a: reduce-scatter, Adam on half, allgather of θ, moments gathered
        // for the checkpoint) writes the same bytes as the replicated one (c: allreduce, Adam on everything).
        #expect(Tool.bytes("\(dir)/a/model.safetensors") == Tool.bytes("\(dir)/c/model.safetensors"))
    }

    @Test("overlapped allreduce with empty ranks and workers (a 1-row last batch on 2 ranks × 2 threads) completes, equal to the blocking exchange")
    func overlapWithEmptyShards() throws {
        guard Self.mpirun != nil else { print("skipped: mpirun not found"); return }
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // 241 training rows, batch 80: the last batch of every epoch has 1 row, so one rank and three of the
        // four workers have none. Worker 0 coordinates the buckets; an empty worker 0 used to wait for itself.
        let extra = ["--threads", "2", "--batch-size", "80"]
        let on = try Self.launch(2, Self.small("\(dir)/on", extra + ["--overlap", "on"]), timeout: 60)
        #expect(on.status == 0, "\(on.output)")
        let off = try Self.launch(2, Self.small("\(dir)/off", extra + ["--overlap", "off"]), timeout: 60)
        #expect(off.status == 0, "\(off.output)")
        #expect(Tool.bytes("\(dir)/on/model.safetensors") == Tool.bytes("\(dir)/off/model.safetensors"))
    }

    @Test("sharded optimiser on 3 ranks with parts of unequal size: agrees with one process and with the replicated optimiser")
    func shardedThreeRanks() throws {
        guard Self.mpirun != nil else { print("skipped: mpirun not found"); return }
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // hidden 15: 2536 parameters, parts of 845, 845 and 846 on 3 ranks.
        let extra = ["--threads", "1", "--hidden", "15"]
        let sharded = try Self.launch(3, Self.small("\(dir)/sharded", extra + ["--overlap", "off"]))
        #expect(sharded.status == 0, "\(sharded.output)")
        let replicated = try Self.launch(3, Self.small("\(dir)/replicated", extra + ["--overlap", "on"]))
        #expect(replicated.status == 0, "\(replicated.output)")
        #expect(try Tool.flow(Self.small("\(dir)/one", extra)).status == 0)
        let one = try Checkpoint.load(path: "\(dir)/one/model.safetensors")
        let scale = one.model.parameters.map { abs($0) }.max()!
        for name in ["sharded", "replicated"] {
            let c = try Checkpoint.load(path: "\(dir)/\(name)/model.safetensors")
            let state = try #require(c.state)
            let reference = try #require(one.state)
            var worst: Float = 0
            for (x, y) in zip(c.model.parameters, one.model.parameters) { worst = max(worst, abs(x - y) / scale) }
            #expect(worst < 1e-5, "\(name): 3 ranks vs 1 process: max difference \(worst) of the largest parameter")
            // Adam's moments were gathered from their owners: every element close to the one-process run's.
            let vScale = reference.secondMoment.max()!
            var worstV: Float = 0
            for (x, y) in zip(state.secondMoment, reference.secondMoment) { worstV = max(worstV, abs(x - y) / vScale) }
            #expect(worstV < 1e-4, "\(name): second moments differ by \(worstV) of the largest")
        }
    }

    /// `mpirun -np n [--oversubscribe] [--allow-run-as-root] --bind-to none flow-mpirun args`, started as a shell
    /// starts it.
    static func launchDirect(_ ranks: Int, _ args: [String], environment: [String: String], log: String) throws -> SignalDriver {
        try SignalDriver(mpirun!, mpirunArguments(ranks, environment: environment) + [Tool.binary] + args, log: log)
    }

    @Test("SIGTERM or SIGINT to cluster/launch.sh, SIGUSR1 to mpirun: every rank stops after the step in progress, rank 0 writes a checkpoint, resuming gives the undisturbed bytes",
          arguments: [("launch.sh", 2, SIGTERM), ("launch.sh", 3, SIGINT), ("mpirun", 2, SIGUSR1)])
    func signalToJob(launcher: String, ranks: Int, signal: Int32) throws {
        guard Self.mpirun != nil else { print("skipped: mpirun not found"); return }
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let full = try Self.launch(ranks, FaultToolTests.run("\(dir)/full", epochs: 3, extra: ["--threads", "1"]))
        #expect(full.status == 0, "\(full.output)")
        // Rank 0 holds in step 40 until the signal has reached it: the run cannot end first.
        let args = FaultToolTests.run("\(dir)/cut", epochs: 3, extra: ["--threads", "1"])
        let hold = ["FLOW_TEST_FAULT": "hold@0:\(FaultToolTests.holdStep)"]
        let job = launcher == "mpirun" ? try Self.launchDirect(ranks, args, environment: hold, log: "\(dir)/cut.log")
                                       : try Self.launchScript(ranks, args, environment: hold, log: "\(dir)/cut.log")
        try #require(job.waitFor("holds at step \(FaultToolTests.holdStep)"), "\(job.output)")
        job.send(signal)
        let status = job.wait()
        let output = job.output
        // launch.sh passes a first SIGTERM or SIGINT on to mpirun as SIGUSR1, which mpirun forwards to every rank,
        // and exits with 128 + the signal it received; mpirun exits with the ranks' 128 + SIGUSR1.
        #expect(status == 128 + signal, "\(launcher)'s status \(status): \(output)")
        #expect(output.contains("stopped by SIGUSR1 after step 41 (epoch 2: 16 of 25 batches done)"), "\(output)")
        // The command to resume with, as this job was launched (launch.sh exports itself as FLOW_LAUNCHER).
        let launch = launcher == "mpirun" ? "mpirun -np \(ranks) flow-mpirun" : "\(MultiHostTests.repository)/cluster/launch.sh -n \(ranks)"
        #expect(output.contains("resume with: \(launch) train --resume \(dir)/cut --threads 1 (the same layout continues with the same bytes)"), "\(output)")
        #expect(try Checkpoint.load(path: "\(dir)/cut/model.safetensors").state?.step == 41)
        let resumed = try Self.launch(ranks, ["train", "--resume", "\(dir)/cut", "--no-plots", "--quiet", "--threads", "1"])
        #expect(resumed.status == 0, "\(resumed.output)")
        #expect(Tool.bytes("\(dir)/cut/model.safetensors") == Tool.bytes("\(dir)/full/model.safetensors"),
                "stopped and resumed: differs from the uninterrupted \(ranks)-rank run")
    }

    @Test("a second SIGTERM to cluster/launch.sh ends the job through mpirun's kill path; the checkpoint on disk is a whole one")
    func secondSignalToLaunchScript() throws {
        guard Self.mpirun != nil else { print("skipped: mpirun not found"); return }
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Rank 0 holds in step 40 until two stop signals have reached it: launch.sh's SIGUSR1, then mpirun's
        // SIGTERM for the second SIGTERM, followed by its SIGKILL.
        let job = try Self.launchScript(2, FaultToolTests.run("\(dir)/cut", epochs: 3, extra: ["--threads", "1"]),
                                        environment: ["FLOW_TEST_FAULT": "hold@0:\(FaultToolTests.holdStep):2"], log: "\(dir)/cut.log")
        try #require(job.waitFor("holds at step \(FaultToolTests.holdStep)"), "\(job.output)")
        job.send(SIGTERM)
        try #require(job.waitFor("received stop signal 1 (SIGUSR1)"), "\(job.output)")
        job.send(SIGTERM)
        let status = job.wait()
        let output = job.output
        #expect(status == 128 + SIGTERM, "launch.sh's status \(status): \(output)")
        #expect(output.contains("launch.sh: SIGTERM again: ending the job now (SIGTERM to mpirun)"), "\(output)")
        // Killed during the stop or not, the file on disk is a whole checkpoint: epoch 1's (step 25), or the stop's.
        let step = try Checkpoint.load(path: "\(dir)/cut/model.safetensors").state?.step
        #expect(step == 25 || step == 41, "checkpoint at step \(String(describing: step))")
    }

    @Test("cluster/slurm.sbatch (without PMIx: through launch.sh) passes Slurm's early SIGUSR1 on: the ranks stop with a checkpoint")
    func slurmBatchScriptSignal() throws {
        guard Self.mpirun != nil else { print("skipped: mpirun not found"); return }
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A stand-in srun that lists no MPI plugin, so the script takes its mpirun path (cluster/launch.sh).
        try FileManager.default.createDirectory(atPath: "\(dir)/bin", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: "\(dir)/bin/srun", contents: Data("#!/bin/sh\nexit 0\n".utf8),
                                       attributes: [.posixPermissions: 0o755])
        let path = "\(dir)/bin:" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        // FaultToolTests.run's arguments without its --threads 2: the script adds --threads $SLURM_CPUS_PER_TASK.
        var args = FaultToolTests.run("\(dir)/cut", epochs: 3)
        let t = try #require(args.firstIndex(of: "--threads"))
        args.removeSubrange(t...(t + 1))
        let job = try SignalDriver("/bin/bash", ["\(MultiHostTests.repository)/cluster/slurm.sbatch"] + args,
                                   environment: ["PATH": path, "SLURM_NTASKS": "2", "SLURM_CPUS_PER_TASK": "1",
                                                 "SLURM_SUBMIT_DIR": MultiHostTests.repository, "FLOW_BIN": Tool.binary,
                                                 "FLOW_TEST_FAULT": "hold@0:\(FaultToolTests.holdStep)"],
                                   log: "\(dir)/cut.log")
        try #require(job.waitFor("holds at step \(FaultToolTests.holdStep)"), "\(job.output)")
        job.send(SIGUSR1)
        let status = job.wait()
        let output = job.output
        #expect(status == 128 + SIGUSR1, "slurm.sbatch's status \(status): \(output)")
        #expect(output.contains("layout: 2 ranks × 1 thread"), "--threads from SLURM_CPUS_PER_TASK: \(output)")
        #expect(output.contains("stopped by SIGUSR1 after step 41 (epoch 2: 16 of 25 batches done)"), "\(output)")
        #expect(try Checkpoint.load(path: "\(dir)/cut/model.safetensors").state?.step == 41)
    }

    @Test("a signal that reaches one rank only (rank 2 of 3) stops every rank after the same step, the one in progress")
    func signalToOneRank() throws {
        guard Self.mpirun != nil else { print("skipped: mpirun not found"); return }
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let job = try Self.launchScript(3, FaultToolTests.run("\(dir)/cut", epochs: 3, extra: ["--threads", "1"]),
                                        environment: ["FLOW_TEST_FAULT": "hold@2:\(FaultToolTests.holdStep)"], log: "\(dir)/cut.log")
        try #require(job.waitFor("holds at step \(FaultToolTests.holdStep)"), "\(job.output)")
        let rank2 = try #require(job.number(after: "FLOW_TEST_FAULT: rank 2 (pid "), "\(job.output)")
        kill(rank2, SIGTERM)
        let status = job.wait()
        let output = job.output
        // Every rank exits with the signal the ranks agreed on, whichever exits first and sets mpirun's status.
        #expect(status == 128 + SIGTERM, "mpirun's status \(status): \(output)")
        #expect(output.contains("stopped by SIGTERM to another rank after step 41 (epoch 2: 16 of 25 batches done)"), "\(output)")
        #expect(output.contains("resume with: \(MultiHostTests.repository)/cluster/launch.sh -n 3 train --resume \(dir)/cut --threads 1 (the same layout continues with the same bytes)"), "\(output)")
        #expect(try Checkpoint.load(path: "\(dir)/cut/model.safetensors").state?.step == 41)
    }

    @Test("a rank with another configuration gets a clear error, not a hang")
    func mismatchedConfiguration() throws {
        guard let mpirun = Self.mpirun else { print("skipped: mpirun not found"); return }
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var a = ["--oversubscribe"]
        if getuid() == 0 { a.append("--allow-run-as-root") }
        let base = Self.small("\(dir)/out", ["--threads", "1"])
        let r = try Tool.run(mpirun, a + ["-np", "1", Tool.binary] + base + [":", "-np", "1", Tool.binary] + base + ["--lr", "2e-3"], timeout: 120)
        #expect(r.status != 0)
        #expect(r.output.contains("error: rank 1: this rank's configuration differs from rank 0's: --lr 0.001 vs 0.002 (rank 0 vs rank 1)"), "\(r.output)")
        #expect(r.seconds < 120, "a hang: ended by the test's guard after \(r.seconds) s")
        #expect(!Tool.exists("\(dir)/out/model.safetensors"))
    }

    @Test("a set-up error on one rank only ends every rank with that rank's message, not a hang or another rank's bytes: rank 0 finding its run directory locked by another train, rank 1 refusing its flags or failing to parse them, rank 0 refusing to replace a trained model; one data file spelt two ways is no error")
    func setUpErrorOnOneRank() throws {
        guard let mpirun = Self.mpirun else { print("skipped: mpirun not found"); return }
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = "\(dir)/run"
        let first = try Tool.flow(Self.small(run, ["--threads", "1", "--epochs", "1"]))
        #expect(first.status == 0, "\(first.output)")
        let checkpoint = try #require(Tool.bytes("\(run)/model.safetensors"))

        // Rank 0 fails before the ranks compare their configurations (rank 1 is then comparing).
        let fd = open(run, O_RDONLY | O_DIRECTORY)
        #expect(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0)  // as another train holds it
        let locked = try Self.launch(2, ["train", "--resume", run, "--epochs", "2", "--threads", "1", "--quiet"], timeout: 120)
        close(fd)
        #expect(locked.status == 1, "\(locked.output)")
        #expect(locked.output.contains("error: rank 0: \(run): is in use by another flow-mpirun train"), "\(locked.output)")
        #expect(!locked.output.contains("rank 1"), "\(locked.output)")  // before: rank 0's error text was read as rank 1's configuration
        #expect(locked.seconds < 120, "a hang: ended by the test's guard after \(locked.seconds) s")

        // Rank 1 fails before the ranks compare (rank 0 is then comparing); nothing is created.
        var a = ["--oversubscribe", "--bind-to", "none"]
        if getuid() == 0 { a.append("--allow-run-as-root") }
        let fresh = Self.small("\(dir)/fresh", ["--threads", "1"])
        let flags = try Tool.run(mpirun, a + ["-np", "1", Tool.binary] + fresh + [":", "-np", "1", Tool.binary] + fresh + ["--data", "\(dir)/rows.csv"],
                                 timeout: 120)
        #expect(flags.status == 1, "\(flags.output)")
        #expect(flags.output.contains("error: rank 1: --samples applies to synthetic data sets (--dataset), not to --data FILE"), "\(flags.output)")
        #expect(flags.seconds < 120, "a hang: ended by the test's guard after \(flags.seconds) s")
        #expect(!Tool.exists("\(dir)/fresh"))

        // A command-line error on rank 1 only (parsed before MPI starts): the same agreement, status 1.
        let parse = try Tool.run(mpirun, a + ["-np", "1", Tool.binary] + fresh + [":", "-np", "1", Tool.binary] + fresh + ["--bogus-flag"],
                                 timeout: 120)
        #expect(parse.status == 1, "\(parse.output)")
        #expect(parse.output.contains("error: rank 1: Unknown option '--bogus-flag'"), "\(parse.output)")
        #expect(parse.seconds < 120, "a hang: ended by the test's guard after \(parse.seconds) s")
        #expect(!Tool.exists("\(dir)/fresh"))

        // --help on one rank only: it prints, every rank ends (status 1: no job runs); on every rank: printed once, 0.
        let help = try Tool.run(mpirun, a + ["-np", "1", Tool.binary] + fresh + [":", "-np", "1", Tool.binary] + fresh + ["--help"], timeout: 120)
        #expect(help.status == 1, "\(help.output)")
        #expect(help.output.contains("error: rank 1: asked for help or the version (flow-mpirun \((fresh + ["--help"]).joined(separator: " "))): printed on this rank, and no job runs"), "\(help.output)")
        #expect(help.output.contains("OVERVIEW: Train a RealNVP flow"), "\(help.output)")
        #expect(help.seconds < 120, "a hang: ended by the test's guard after \(help.seconds) s")
        let helpAll = try Self.launch(2, ["train", "--help"], timeout: 120)
        #expect(helpAll.status == 0, "\(helpAll.output)")
        #expect(helpAll.output.components(separatedBy: "OVERVIEW: Train a RealNVP flow").count == 2, "\(helpAll.output)")
        // No subcommand on one rank (the root prints its help), a parse error on the other: both named, status 1.
        let mixed = try Tool.run(mpirun, a + ["-np", "1", Tool.binary, ":", "-np", "1", Tool.binary, "train", "--bogus-flag"], timeout: 120)
        #expect(mixed.status == 1, "\(mixed.output)")
        #expect(mixed.output.contains("error: rank 0: asked for help or the version (flow-mpirun): printed on this rank, and no job runs"), "\(mixed.output)")
        #expect(mixed.output.contains("error: rank 1: Unknown option '--bogus-flag'"), "\(mixed.output)")
        #expect(mixed.seconds < 120, "a hang: ended by the test's guard after \(mixed.seconds) s")
        // inspect, a command without collectives of its own, takes part too.
        let inspect = try Tool.run(mpirun, a + ["-np", "1", Tool.binary, "inspect", "--model", run, ":", "-np", "1", Tool.binary, "inspect",
                                                "--model", run, "--bogus"], timeout: 120)
        #expect(inspect.status == 1, "\(inspect.output)")
        #expect(inspect.output.contains("error: rank 1: Unknown option '--bogus'"), "\(inspect.output)")
        #expect(!inspect.output.contains("checkpoint: "), "\(inspect.output)")
        #expect(!Tool.exists("\(dir)/fresh"))
        // Different subcommands (their collectives would never pair up): refused at the first collective, not a hang.
        let mpmd = try Tool.run(mpirun, a + ["-np", "1", Tool.binary, "inspect", "--model", run, ":", "-np", "1", Tool.binary, "sample",
                                             "--model", run, "-n", "3", "--out", "\(dir)/mpmd.csv"], timeout: 120)
        #expect(mpmd.status == 1, "\(mpmd.output)")
        #expect(mpmd.output.contains("error: the ranks run different subcommands (rank 0: inspect, rank 1: sample): every rank of a job must run the same command"),
                "\(mpmd.output)")
        #expect(mpmd.seconds < 120, "a hang: ended by the test's guard after \(mpmd.seconds) s")
        // The same subcommand with other values (a sample of seed 1 written as if of seed 2): refused, nothing written.
        let sample = ["sample", "--model", run, "-n", "6", "--out", "\(dir)/mix.csv"]
        let fingerprint = LoadedModel.fingerprint(try Checkpoint.load(path: "\(run)/best.safetensors"))
        let seeds = try Tool.run(mpirun, a + ["-np", "1", Tool.binary] + sample + ["--seed", "1", ":", "-np", "1", Tool.binary] + sample + ["--seed", "2"],
                                 timeout: 120)
        #expect(seeds.status == 1, "\(seeds.output)")
        #expect(seeds.output.contains("error: the ranks run different commands (rank 0: `model \(fingerprint); sample -n 6 --seed 1 --temperature 1.0`; rank 1: `model \(fingerprint); sample -n 6 --seed 2 --temperature 1.0`): every rank of a job must run the same command on the same model and data (file paths and --threads may differ)"),
                "\(seeds.output)")
        #expect(!Tool.exists("\(dir)/mix.csv"))
        // The same command: paths spelt per host, flags in another order or spelt --n=6, a default given explicitly,
        // --threads on one rank only.
        let perHost = try Tool.run(mpirun, a + ["-np", "1", Tool.binary] + sample + [":", "-np", "1", Tool.binary, "sample", "--out", "\(dir)/mix.csv",
                                                "--model", "\(dir)/./run", "--n=6", "--seed", "0", "--threads=2"], timeout: 120)
        #expect(perHost.status == 0, "\(perHost.output)")
        #expect(Tool.exists("\(dir)/mix.csv"))
        // evaluate on two files of the same name but other rows (each host its own): refused, naming the fingerprints.
        try FileManager.default.createDirectory(atPath: "\(dir)/other", withIntermediateDirectories: true)
        try "0.1,0.2\n0.3,0.4\n".write(toFile: "\(dir)/mine.csv", atomically: true, encoding: .utf8)
        try "0.1,0.2\n0.3,0.5\n".write(toFile: "\(dir)/other/mine.csv", atomically: true, encoding: .utf8)
        let scores = try Tool.run(mpirun, a + ["-np", "1", Tool.binary, "evaluate", "--model", run, "--data", "\(dir)/mine.csv", ":", "-np", "1", Tool.binary,
                                               "evaluate", "--model", run, "--data", "\(dir)/other/mine.csv"], timeout: 120)
        #expect(scores.status == 1, "\(scores.output)")
        #expect(scores.output.contains("error: the ranks run different commands (rank 0: `model \(fingerprint); evaluate; data "), "\(scores.output)")
        #expect(!scores.output.contains("NLL"), "\(scores.output)")
        // encode likewise (it wrote rank 1's rows under rank 0's name).
        let encode = try Tool.run(mpirun, a + ["-np", "1", Tool.binary, "encode", "--model", run, "--data", "\(dir)/mine.csv", "--out", "\(dir)/z.csv", ":",
                                               "-np", "1", Tool.binary, "encode", "--model", run, "--data", "\(dir)/other/mine.csv", "--out", "\(dir)/z.csv"], timeout: 120)
        #expect(encode.status == 1 && encode.output.contains("error: the ranks run different commands (rank 0: `model \(fingerprint); encode data "), "\(encode.output)")
        #expect(!Tool.exists("\(dir)/z.csv"))
        // bench: the thread counts decide each rank's measurements (collectives), so they must agree.
        let bench = ["bench", "--steps", "1", "--warmup", "0", "--repeats", "1", "--hidden", "8", "--hidden-layers", "1", "--couplings", "2", "--batch-size", "32"]
        let sweeps = try Tool.run(mpirun, a + ["-np", "1", Tool.binary] + bench + ["--threads", "1,2", ":", "-np", "1", Tool.binary] + bench + ["--threads", "1"],
                                  timeout: 120)
        #expect(sweeps.status == 1 && sweeps.output.contains("error: the ranks run different commands (rank 0: `bench; "), "\(sweeps.output)")
        #expect(sweeps.seconds < 120, "a hang: ended by the test's guard after \(sweeps.seconds) s")

        // One data file spelt two ways is the same data (compared by fingerprint), not another configuration.
        var csv = "x0,x1\n"
        let moons = ToyDataset.moons.generate(count: 120, seed: 3)
        for i in 0..<120 { csv += "\(moons[i, 0]),\(moons[i, 1])\n" }
        try csv.write(toFile: "\(dir)/rows.csv", atomically: true, encoding: .utf8)
        // The ranks' thread counts differ too: the summary names each.
        let onFile = ["train", "--epochs", "1", "--hidden", "16", "--hidden-layers", "2", "--couplings", "4", "--batch-size", "64",
                      "--out", "\(dir)/file", "--no-plots", "--quiet"]
        let spelt = try Tool.run(mpirun, a + ["-np", "1", Tool.binary] + onFile + ["--threads", "1", "--data", "\(dir)/rows.csv", ":", "-np", "1",
                                 Tool.binary] + onFile + ["--threads", "2", "--data", "\(dir)/./rows.csv"], timeout: 120)
        #expect(spelt.status == 0, "\(spelt.output)")
        #expect(Tool.exists("\(dir)/file/model.safetensors"))
        #expect(spelt.output.contains("(2 ranks × 1,2 threads)"), "\(spelt.output)")

        // Rank 0 alone checks the directory (after the ranks agree): a trained model is not replaced without --force.
        let again = try Self.launch(2, Self.small(run, ["--threads", "1", "--epochs", "1"]), timeout: 120)
        #expect(again.status == 1, "\(again.output)")
        #expect(again.output.contains("error: rank 0: \(run): already holds a trained model; use --resume \(run) to continue it"), "\(again.output)")
        #expect(again.seconds < 120, "a hang: ended by the test's guard after \(again.seconds) s")
        #expect(Tool.bytes("\(run)/model.safetensors") == checkpoint)
    }

    @Test("a rank killed mid-run ends the job with a non-zero exit, not a hang", arguments: ["kill@1:5", "exit@1:5"])
    func killedRank(fault: String) throws {
        guard Self.mpirun != nil else { print("skipped: mpirun not found"); return }
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try Self.launch(2, Self.small("\(dir)/out", ["--threads", "1", "--epochs", "200"]),
                                environment: ["FLOW_TEST_FAULT": fault], timeout: 120)
        #expect(r.status != 0, "\(r.output)")
        // Open MPI ends the job within seconds; only a hang reaches the test's guard.
        #expect(r.seconds < 120, "a hang: ended by the test's guard after \(r.seconds) s")
        #expect(r.output.contains("FLOW_TEST_FAULT"))
    }
}
