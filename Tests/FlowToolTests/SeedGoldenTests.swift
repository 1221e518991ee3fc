import Foundation
import Testing

/// A model's bytes, pinned: golden values written by a debug build of the code before the transform-protocol
/// refactoring (commit 92f491f, `scripts/seed-golden.sh` with the `small` flags), so that any change to the model's
/// arithmetic shows here. OpenBLAS is pinned to its Haswell kernels (the bytes of a matrix product depend on the
/// kernels). The seed model itself is compared between release builds with the same script (BENCHMARKS.md §10).
@Suite("seed golden bytes", .serialized)
struct SeedGoldenTests {
    /// OpenBLAS's Haswell (AVX2) kernels, one BLAS thread: the same bytes on every x86-64 machine with AVX2.
    static let environment = ["OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_NUM_THREADS": "1"]

    static var hasAVX2: Bool {
        (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.contains(" avx2") ?? false
    }

    static func sha256(_ path: String) throws -> String {
        let r = try Tool.run("/usr/bin/env", ["sha256sum", path])
        return String(r.stdout.prefix(64))
    }

    /// evaluate --json's "nll" as printed (the shortest round-trip digits: equal text means equal bits; parsing
    /// the number could round it).
    static func nll(_ model: String) throws -> String {
        let r = try Tool.flow(["evaluate", "--model", model, "--json", "--threads", "1"], environment: environment)
        #expect(r.status == 0, "\(r.output)")
        guard let key = r.stdout.range(of: "\"nll\":") else { return "no nll in: \(r.stdout)" }
        return String(r.stdout[key.upperBound...].prefix { $0 != "," && $0 != "}" })
    }

    /// The small model every case trains (the seed's structure, smaller, so that a debug build runs it quickly).
    static let small = ["--samples", "600", "--hidden", "32", "--hidden-layers", "2", "--couplings", "4", "--batch-size", "64",
                        "--learnable-scale"]

    struct Golden: Sendable, CustomStringConvertible {
        var mode: String, layout: String, nll: String, model: String, sample: String, encode: String
        var description: String { "\(mode) \(layout)" }
    }

    // `scripts/seed-golden.sh <debug flow-mpirun of 92f491f> DIR` + `small`, a debug build's bytes.
    static let cases: [Golden] = [
        Golden(mode: "default", layout: "1x1", nll: "2.030149302437191",
               model: "f27745ffa535a1588a533453b6fa874e6934c612d896fabb2010c85d78070dc5",
               sample: "bd6e581b4dd90e8d3bd611f786e63f4c9ae3cb9bfae2b524263157275c11570a",
               encode: "28d2ac749915f96b1de8ff8a70723e92645492d48c1a9f5a03a460cf3b03a7af"),
        Golden(mode: "default", layout: "1x2", nll: "2.030149296296938",
               model: "63f5192b0c71d07eeb3872321aadee427fb5faa45f8cd87729503a4ef2b93c4e",
               sample: "ed01301705be26d11e36a3d343d94e703bcea9aa52d046f8db0f978499ce9865",
               encode: "922221c3996cbf9f3b96492e2805c32af44ce23719751bf3d235dc51011080dc"),
        Golden(mode: "default", layout: "2x1", nll: "2.030149296296938",
               model: "63f5192b0c71d07eeb3872321aadee427fb5faa45f8cd87729503a4ef2b93c4e",
               sample: "ed01301705be26d11e36a3d343d94e703bcea9aa52d046f8db0f978499ce9865",
               encode: "922221c3996cbf9f3b96492e2805c32af44ce23719751bf3d235dc51011080dc"),
    ] + ["1x1", "1x2", "2x1"].map { layout in
        Golden(mode: "reproducible", layout: layout, nll: "2.030149302437191",
               model: "ace5e6265b684957934152887c8638919055bf9eb122cd6df0e9cd349ee974aa",
               sample: "bd6e581b4dd90e8d3bd611f786e63f4c9ae3cb9bfae2b524263157275c11570a",
               encode: "28d2ac749915f96b1de8ff8a70723e92645492d48c1a9f5a03a460cf3b03a7af")
    }

    /// Whether the golden values apply: a debug build (the release build's last bits differ; compare release builds
    /// with scripts/seed-golden.sh) on a CPU with AVX2.
    static var applies: Bool {
        #if DEBUG
        if hasAVX2 { return true }
        print("skipped: the golden bytes are those of OpenBLAS's AVX2 kernels")
        #else
        print("skipped: the golden bytes are a debug build's (compare release builds with scripts/seed-golden.sh)")
        #endif
        return false
    }

    @Test("train --dataset moons --epochs 3 --seed 7 (small): evaluate's NLL, the checkpoint, sample's and encode's bytes as before the refactoring",
          arguments: cases)
    func seedModel(_ g: Golden) throws {
        guard Self.applies else { return }
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = "\(dir)/run"
        var args = ["train", "--dataset", "moons", "--epochs", "3", "--seed", "7"] + Self.small + ["--out", run, "--no-plots", "--quiet"]
        if g.mode == "reproducible" { args.append("--reproducible") }
        let trained: Tool.Result
        switch g.layout {
        case "1x1": trained = try Tool.flow(args + ["--threads", "1"], environment: Self.environment)
        case "1x2": trained = try Tool.flow(args + ["--threads", "2"], environment: Self.environment)
        default:
            guard MPIToolTests.mpirun != nil else { print("skipped: mpirun not found"); return }
            trained = try MPIToolTests.launch(2, args + ["--threads", "1"], environment: Self.environment)
        }
        try #require(trained.status == 0, "\(trained.output)")
        let model = "\(run)/model.safetensors"
        #expect(try Self.sha256(model) == g.model)
        #expect(try Self.nll(model) == g.nll)
        let samples = "\(dir)/samples.csv", latents = "\(dir)/latents.csv"
        let s = try Tool.flow(["sample", "--model", model, "-n", "500", "--seed", "3", "--out", samples, "--threads", "1"], environment: Self.environment)
        try #require(s.status == 0, "\(s.output)")
        #expect(try Self.sha256(samples) == g.sample)
        // encode the first 200 samples (header + 200 rows)
        let text = try String(contentsOfFile: samples, encoding: .utf8)
        let head = text.split(separator: "\n", omittingEmptySubsequences: false).prefix(201).joined(separator: "\n") + "\n"
        try head.write(toFile: "\(dir)/input.csv", atomically: true, encoding: .utf8)
        let e = try Tool.flow(["encode", "--model", model, "--data", "\(dir)/input.csv", "--out", latents, "--threads", "1"], environment: Self.environment)
        try #require(e.status == 0, "\(e.output)")
        // The latents' header is z0,z1 since 5566b97; the golden hash is of the file as it was, headed x0,x1.
        let written = try String(contentsOfFile: latents, encoding: .utf8)
        #expect(written.hasPrefix("z0,z1\n"))
        try ("x0,x1\n" + written.dropFirst("z0,z1\n".count)).write(toFile: "\(dir)/latents-x.csv", atomically: true, encoding: .utf8)
        #expect(try Self.sha256("\(dir)/latents-x.csv") == g.encode)
    }

    @Test("the dequantising path (digits, 2 couplings, 2 epochs): NLL, samples and checkpoint as before the refactoring")
    func digits() throws {
        guard Self.applies else { return }
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = "\(dir)/run"
        let t = try Tool.flow(["train", "--dataset", "digits", "--epochs", "2", "--hidden", "32", "--hidden-layers", "1",
                               "--couplings", "2", "--seed", "7", "--threads", "2", "--out", run, "--no-plots", "--quiet"],
                              environment: Self.environment)
        try #require(t.status == 0, "\(t.output)")
        #expect(try Self.sha256("\(run)/model.safetensors") == "f2b7839ea4dc8faae72ad67fba288f045a95735389b5b69990ccdf44b138f9c7")
        #expect(try Self.nll("\(run)/model.safetensors") == "138.8028615409185")
        let s = try Tool.flow(["sample", "--model", "\(run)/model.safetensors", "-n", "50", "--seed", "3", "--out", "\(dir)/s.csv", "--threads", "1"],
                              environment: Self.environment)
        try #require(s.status == 0, "\(s.output)")
        #expect(try Self.sha256("\(dir)/s.csv") == "df00531a03e08d5c171ca46debbcdb75e118146ebcd4f072c160d06db228056b")
    }

    /// A checkpoint directory written by the code before the refactoring (Tests/FlowToolTests/Fixtures).
    static func fixture(_ name: String) throws -> String {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures"))
        return url.path
    }

    @Test("checkpoints written before the refactoring load and give the same NLL and samples; the moons run resumes to the same bytes")
    func oldCheckpoints() throws {
        guard Self.applies else { return }
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // moons: 3 couplings, hidden 8 × 2 layers, learnable scale, 2 epochs; digits: 2 couplings, dequantising.
        for (name, nll, sample) in [
            ("old-moons", "2.2769062444143637", "3ac1877ca80f064c247734e6460076e22520cb34f2179c4bb18180110c9721a8"),
            ("old-digits", "136.19117955976793", "45f6bb547e2a71a0f322c92e69b0d0621bb3f4d3742bbe7a65155e9572ef13bd"),
        ] {
            let model = "\(try Self.fixture(name))/model.safetensors"
            #expect(try Self.nll(model) == nll, "\(name)")
            let s = try Tool.flow(["sample", "--model", model, "-n", "20", "--seed", "1", "--out", "\(dir)/\(name).csv", "--threads", "1"],
                                  environment: Self.environment)
            try #require(s.status == 0, "\(s.output)")
            #expect(try Self.sha256("\(dir)/\(name).csv") == sample, "\(name)")
        }
        // Resuming the old moons run for one more epoch gives the bytes the old code gives.
        let copy = "\(dir)/resume"
        try FileManager.default.copyItem(atPath: try Self.fixture("old-moons"), toPath: copy)
        let r = try Tool.flow(["train", "--resume", copy, "--epochs", "3", "--threads", "1", "--quiet", "--no-plots"], environment: Self.environment)
        try #require(r.status == 0, "\(r.output)")
        #expect(try Self.sha256("\(copy)/model.safetensors") == "2d0efaed25167008f7691f871d82331adc8563a37e98b308bf95cb64c3de483c")
        #expect(try Self.nll("\(copy)/model.safetensors") == "2.2757793814082845")
    }
}
