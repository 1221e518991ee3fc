import FlowCore
import Foundation
import Testing

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
        var a = ["-np", String(n), "--oversubscribe", "--bind-to", "none", "--mca", "mpi_yield_when_idle", "1"]
        if getuid() == 0 { a.append("--allow-run-as-root") }
        for (k, v) in environment { a += ["-x", "\(k)=\(v)"] }
        return try Tool.run(mpirun!, a + [Tool.binary] + args, timeout: timeout)
    }

    /// Starts `executable` with an empty signal mask and default SIGINT/SIGTERM handling, standard output and
    /// error to `log`; returns its pid.
    static func spawnWithDefaultSignals(_ executable: String, _ arguments: [String], log: String) throws -> pid_t {
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var mask = sigset_t(), defaults = sigset_t()
        sigemptyset(&mask)
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGINT)
        sigaddset(&defaults, SIGTERM)
        posix_spawnattr_setsigmask(&attr, &mask)
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid = pid_t()
        let rc = posix_spawn(&pid, executable, &actions, &attr, argv, environ)
        guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EINVAL) }
        return pid
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

    @Test("SIGTERM to mpirun: the ranks stop after the same step, rank 0 writes a checkpoint, resuming gives the undisturbed bytes")
    func signalUnderMPI() throws {
        guard let mpirun = Self.mpirun else { print("skipped: mpirun not found"); return }
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let full = try Self.launch(2, FaultToolTests.run("\(dir)/full", extra: ["--threads", "1"]))
        #expect(full.status == 0, "\(full.output)")
        var a = ["-np", "2", "--oversubscribe", "--bind-to", "none", "--mca", "mpi_yield_when_idle", "1"]
        if getuid() == 0 { a.append("--allow-run-as-root") }
        // As from a shell: mpirun must not inherit this test thread's blocked signals (Foundation's Process passes
        // them on, and mpirun never unblocks SIGTERM, so it would not forward it).
        let pid = try Self.spawnWithDefaultSignals(mpirun, a + [Tool.binary] + FaultToolTests.run("\(dir)/cut", extra: ["--threads", "1"]),
                                                   log: "\(dir)/cut.log")
        let deadline = Date().addingTimeInterval(120)
        var status: Int32 = 0
        var done = false
        while !done && Date() < deadline {
            if FaultToolTests.epochsDone("\(dir)/cut") >= 2 { kill(pid, SIGTERM); break }
            done = waitpid(pid, &status, WNOHANG) == pid
            usleep(20_000)
        }
        if !done {
            while waitpid(pid, &status, WNOHANG) != pid && Date() < deadline { usleep(20_000) }
        }
        let output = (try? String(contentsOfFile: "\(dir)/cut.log", encoding: .utf8)) ?? ""
        #expect(!done, "training ended before the signal: \(output)")
        #expect(status & 0x7f == 0 && (status >> 8) & 0xff != 0, "mpirun's status \(status): \(output)")
        #expect(output.contains("stopped by SIGTERM after step"), "\(output)")
        #expect(output.contains("resume with: flow-mpirun train --resume \(dir)/cut"), "\(output)")
        let stopped = try Checkpoint.load(path: "\(dir)/cut/model.safetensors")
        let stepStopped = try #require(stopped.state?.step)
        #expect(stepStopped > 0)
        let resumed = try Self.launch(2, ["train", "--resume", "\(dir)/cut", "--no-plots", "--quiet", "--threads", "1"])
        #expect(resumed.status == 0, "\(resumed.output)")
        #expect(Tool.bytes("\(dir)/cut/model.safetensors") == Tool.bytes("\(dir)/full/model.safetensors"),
                "stopped at step \(stepStopped), resumed: differs from the uninterrupted 2-rank run")
    }

    @Test("a rank with another configuration gets a clear error, not a hang")
    func mismatchedConfiguration() throws {
        guard let mpirun = Self.mpirun else { print("skipped: mpirun not found"); return }
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var a = ["--oversubscribe"]
        if getuid() == 0 { a.append("--allow-run-as-root") }
        let base = Self.small("\(dir)/out", ["--threads", "1"])
        let r = try Tool.run(mpirun, a + ["-np", "1", Tool.binary] + base + [":", "-np", "1", Tool.binary] + base + ["--lr", "2e-3"], timeout: 60)
        #expect(r.status != 0)
        #expect(r.output.contains("error: rank 1: this rank's configuration differs from rank 0's: --lr 0.001 vs 0.002 (rank 0 vs rank 1)"), "\(r.output)")
        #expect(r.seconds < 30)
        #expect(!Tool.exists("\(dir)/out/model.safetensors"))
    }

    @Test("a rank killed mid-run ends the job with a non-zero exit within 30 s", arguments: ["kill@1:5", "exit@1:5"])
    func killedRank(fault: String) throws {
        guard Self.mpirun != nil else { print("skipped: mpirun not found"); return }
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try Self.launch(2, Self.small("\(dir)/out", ["--threads", "1", "--epochs", "200"]),
                                environment: ["FLOW_TEST_FAULT": fault], timeout: 60)
        #expect(r.status != 0, "\(r.output)")
        #expect(r.seconds < 30, "took \(r.seconds) s")
        #expect(r.output.contains("FLOW_TEST_FAULT"))
    }
}
