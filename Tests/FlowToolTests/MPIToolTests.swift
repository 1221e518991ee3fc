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

    @Test("default mode: 2 ranks repeat bit for bit and agree with one process to 1e-5")
    func defaultMode() throws {
        guard Self.mpirun != nil else { print("skipped: mpirun not found"); return }
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for name in ["a", "b"] {
            let r = try Self.launch(2, Self.small("\(dir)/\(name)", ["--threads", "1"]))
            #expect(r.status == 0, "\(r.output)")
        }
        #expect(Tool.bytes("\(dir)/a/model.safetensors") == Tool.bytes("\(dir)/b/model.safetensors"))
        #expect(try Tool.flow(Self.small("\(dir)/one", ["--threads", "1"])).status == 0)
        let multi = try Checkpoint.load(path: "\(dir)/a/model.safetensors").model.parameters
        let one = try Checkpoint.load(path: "\(dir)/one/model.safetensors").model.parameters
        let scale = one.map { abs($0) }.max()!
        var worst: Float = 0
        for (x, y) in zip(multi, one) { worst = max(worst, abs(x - y) / scale) }
        #expect(worst < 1e-5, "2 ranks vs 1 process after 12 steps: max difference \(worst) of the largest parameter")
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
