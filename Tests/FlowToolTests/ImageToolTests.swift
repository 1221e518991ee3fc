import FlowCore
import Foundation
import Testing

/// Image flows through the tool: `train --arch realnvp-small` on the 8×8 digits and on a slice of Fashion-MNIST, the
/// checkpoint, evaluate (test bits/dim), resume, inspect, exact mode across layouts, and bad flags.
@Suite("Image flows (tool)", .serialized)
struct ImageToolTests {
    /// A tiny image flow (debug builds are slow): one level of 1 + 1 couplings, 1 final, ResNets 4 channels × 1 block.
    static let tiny = ["--arch", "realnvp-small", "--channels", "4", "--res-blocks", "1", "--checkerboard-couplings", "1",
                       "--channel-couplings", "1", "--final-couplings", "1"]

    static func small(_ out: String, _ extra: [String] = []) -> [String] {
        ["train", "--dataset", "digits", "--limit-rows", "300", "--epochs", "2", "--batch-size", "40", "--out", out,
         "--quiet", "--no-plots"] + tiny + extra
    }

    static func json(_ args: [String]) throws -> [String: Any] {
        let r = try Tool.flow(args)
        try #require(r.status == 0, "\(r.output)")
        return try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout)")
    }

    @Test("digits as 1×8×8 images: the checkpoint holds the image flow; evaluate's bits/dim is below uniform and matches train's validation; resume continues; encode/decode on PNG files; inspect shows the levels")
    func digits() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try Tool.flow(Self.small("\(dir)/run", ["--threads", "2"]))
        try #require(r.status == 0, "\(r.output)")
        let checkpoint = try Checkpoint.load(path: "\(dir)/run/model.safetensors")
        let image = try #require(checkpoint.model.configuration.image)
        #expect(image.input == ImageShape(channels: 1, height: 8, width: 8) && image.levels == 1 && image.channels == 4)
        #expect(checkpoint.model.network.layout.slot(named: "levels.0.channel.0.net.in.weight")?.shape == [4, 2, 3, 3])
        let e = try Self.json(["evaluate", "--model", "\(dir)/run/model.safetensors", "--json", "--threads", "2"])
        let bits = try #require(e["bits_per_dim"] as? Double)
        #expect(bits < log2(17.0) && bits > 1, "\(bits) bits/dim (uniform: 4.09)")
        // train's last validation NLL (metrics.csv) is evaluate's on the validation split (same noise draw).
        let metrics = try String(contentsOfFile: "\(dir)/run/metrics.csv", encoding: .utf8).split(separator: "\n")
        let header = metrics[0].split(separator: ","), last = metrics.last!.split(separator: ",", omittingEmptySubsequences: false)
        let column = try #require(header.firstIndex(of: "validation_nll"))
        let validation = try #require(Double(last[column]))
        #expect(abs(validation - (e["nll"] as? Double ?? .nan)) < 1e-3 * abs(validation), "\(validation) vs \(e)")
        let resumed = try Tool.flow(["train", "--resume", "\(dir)/run", "--epochs", "3", "--quiet", "--no-plots", "--threads", "2"])
        #expect(resumed.status == 0, "\(resumed.output)")
        #expect(try Checkpoint.load(path: "\(dir)/run/model.safetensors").state?.step == 3 * 6)  // 240 training rows, batch 40
        // Image files: decode one latent to a bare 8×8 PNG (grey = level·255/16), encode that PNG back: the latent
        // of the integer levels, as encode gives for the same levels from a CSV.
        let levels = (0..<64).map { ($0 * 5) % 17 }
        try (levels.map { String(Double($0) + 0.5) }.joined(separator: ",") + "\n").write(toFile: "\(dir)/mid.csv", atomically: true, encoding: .utf8)
        try (levels.map(String.init).joined(separator: ",") + "\n").write(toFile: "\(dir)/levels.csv", atomically: true, encoding: .utf8)
        for (input, output) in [("mid.csv", "z_mid.npy"), ("levels.csv", "z_levels.npy")] {
            let r = try Tool.flow(["encode", "--model", "\(dir)/run", "--data", "\(dir)/\(input)", "--out", "\(dir)/\(output)"])
            try #require(r.status == 0, "\(r.output)")
        }
        let decoded = try Tool.flow(["decode", "--model", "\(dir)/run", "--data", "\(dir)/z_mid.npy", "--out", "\(dir)/one.png"])
        try #require(decoded.status == 0, "\(decoded.output)")
        let png = try PNGImage.read(path: "\(dir)/one.png")
        #expect(png.width == 8 && png.height == 8 && png.channels == 1)
        #expect(png.pixels.map(Int.init) == levels.map { Int((Double($0) * 255 / 16).rounded()) })
        let encoded = try Tool.flow(["encode", "--model", "\(dir)/run", "--data", "\(dir)/one.png", "--out", "\(dir)/z_png.npy"])
        try #require(encoded.status == 0, "\(encoded.output)")
        #expect(try NPYReader.read(path: "\(dir)/z_png.npy") == NPYReader.read(path: "\(dir)/z_levels.npy"))
        // A sample's PNG through encode and decode comes back pixel for pixel (decode lands within rounding of the
        // levels encode read).
        let sampled = try Tool.flow(["sample", "--model", "\(dir)/run", "-n", "1", "--seed", "3", "--out", "\(dir)/s.png"])
        try #require(sampled.status == 0, "\(sampled.output)")
        for args in [["encode", "--data", "\(dir)/s.png", "--out", "\(dir)/zs.npy"], ["decode", "--data", "\(dir)/zs.npy", "--out", "\(dir)/back.png"]] {
            let r = try Tool.flow(args + ["--model", "\(dir)/run"])
            try #require(r.status == 0, "\(r.output)")
        }
        #expect(try PNGImage.read(path: "\(dir)/back.png") == PNGImage.read(path: "\(dir)/s.png"))
        // A grid: -n 3 with --columns 10 is 3 columns wide (RGB, a blue border); --columns with .npy is refused.
        let grid = try Tool.flow(["sample", "--model", "\(dir)/run", "-n", "3", "--columns", "10", "--out", "\(dir)/g.png"])
        try #require(grid.status == 0, "\(grid.output)")
        let g = try PNGImage.read(path: "\(dir)/g.png")
        #expect(g.width == 2 + 3 * 10 && g.height == 2 + 10 && g.channels == 3)
        #expect(Array(g.pixels[0..<3]) == [40, 70, 140])
        let npyColumns = try Tool.flow(["sample", "--model", "\(dir)/run", "-n", "3", "--columns", "2", "--out", "\(dir)/g.npy"])
        #expect(npyColumns.status != 0 && npyColumns.stderr.contains("--columns 2 applies to a .png grid"), "\(npyColumns.output)")
        #expect(!Tool.exists("\(dir)/g.npy"))
        // A PNG of another size is refused, naming the file.
        var wrong = PNGImage(width: 9, height: 8, channels: 1)
        wrong.pixels[0] = 1
        try AtomicFile.write(wrong.encoded(), to: "\(dir)/wrong.png")
        let refused = try Tool.flow(["encode", "--model", "\(dir)/run", "--data", "\(dir)/wrong.png", "--out", "\(dir)/z_wrong.npy"])
        #expect(refused.status != 0 && refused.stderr.contains("\(dir)/wrong.png: is a 9×8 grey image; the model's images are 8×8 grey"), "\(refused.output)")
        #expect(!Tool.exists("\(dir)/z_wrong.npy"))
        let inspect = try Tool.flow(["inspect", "--model", "\(dir)/run"])
        #expect(inspect.stdout.contains("levels.0.squeeze  1×8×8 → 4×4×4"), "\(inspect.stdout)")
        #expect(inspect.stdout.contains("levels.0 factor-out: 2 of 4 channels (32 values) to the latent, 2×4×4 go on"))
    }

    @Test("exact mode on an image flow: 1×1, 1×2, 2×1 and 2×2 write the same bytes (ActNorm initialised from the global batch), with ResNets of 4 channels (the direct kernels) and of 16 (Winograd for their 16 → 16 convolutions)", arguments: ["4", "16"])
    func exactModeLayouts(channels: String) throws {
        guard MPIToolTests.mpirun != nil else { print("skipped: mpirun not found"); return }
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let exact = ["--reproducible", "--micro-batch", "8", "--channels", channels]
        let single = try Tool.flow(Self.small("\(dir)/1x1", exact + ["--threads", "1"]))
        try #require(single.status == 0, "\(single.output)")
        let reference = try #require(Tool.bytes("\(dir)/1x1/model.safetensors"))
        for (ranks, threads) in [(1, 2), (2, 1), (2, 2)] {
            let name = "\(ranks)x\(threads)"
            let args = Self.small("\(dir)/\(name)", exact + ["--threads", String(threads)])
            let r = ranks == 1 ? try Tool.flow(args) : try MPIToolTests.launch(ranks, args)
            #expect(r.status == 0, "\(name): \(r.output)")
            #expect(Tool.bytes("\(dir)/\(name)/model.safetensors") == reference, "\(name) differs from 1×1")
        }
        let model = try Checkpoint.load(path: "\(dir)/1x1/model.safetensors").model.configuration
        #expect(model.image?.channels == Int(channels))
    }

    @Test("batch normalisation (--image-batch-norm): exact mode writes the same bytes at 1×1, 1×2 and 2×2, also with several micro-batches per step; the running averages moved and are saved; evaluate (running averages) matches train's validation; inspect names it")
    func batchNorm() throws {
        guard MPIToolTests.mpirun != nil else { print("skipped: mpirun not found"); return }
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (name, batch) in [("b40", ["--micro-batch", "40"]), ("b40x8", ["--micro-batch", "8"])] {
            let exact = ["--reproducible", "--image-batch-norm"] + batch
            let single = try Tool.flow(Self.small("\(dir)/\(name)-1x1", exact + ["--threads", "1"]))
            try #require(single.status == 0, "\(single.output)")
            let reference = try #require(Tool.bytes("\(dir)/\(name)-1x1/model.safetensors"))
            for (ranks, threads) in [(1, 2), (2, 2)] {
                let run = "\(name)-\(ranks)x\(threads)"
                let args = Self.small("\(dir)/\(run)", exact + ["--threads", String(threads)])
                let r = ranks == 1 ? try Tool.flow(args) : try MPIToolTests.launch(ranks, args)
                #expect(r.status == 0, "\(run): \(r.output)")
                #expect(Tool.bytes("\(dir)/\(run)/model.safetensors") == reference, "\(run) differs from 1×1")
            }
        }
        let checkpoint = try Checkpoint.load(path: "\(dir)/b40-1x1/model.safetensors")
        #expect(checkpoint.model.configuration.image?.batchNorm == true && checkpoint.model.configuration.image?.actNorm == false)
        let mean = try #require(checkpoint.model.tensor("final.checkerboard.0.batchnorm.running_mean"))
        let variance = try #require(checkpoint.model.tensor("final.checkerboard.0.batchnorm.running_var"))
        #expect(mean.contains { $0 != 0 } && variance.contains { $0 != 1 }, "running averages \(mean) \(variance)")
        #expect(checkpoint.model.tensor("final.checkerboard.0.actnorm.bias") == nil)
        let e = try Self.json(["evaluate", "--model", "\(dir)/b40-1x1", "--json", "--threads", "2"])
        let metrics = try String(contentsOfFile: "\(dir)/b40-1x1/metrics.csv", encoding: .utf8).split(separator: "\n")
        let header = metrics[0].split(separator: ","), last = metrics.last!.split(separator: ",", omittingEmptySubsequences: false)
        let column = try #require(header.firstIndex(of: "validation_nll"))
        let validation = try #require(Double(last[column]))
        #expect(abs(validation - (e["nll"] as? Double ?? .nan)) < 1e-3 * abs(validation), "\(validation) vs \(e)")
        let inspect = try Tool.flow(["inspect", "--model", "\(dir)/b40-1x1"])
        #expect(inspect.stdout.contains("+ batch norm 4 (+ running mean and variance)"), "\(inspect.stdout)")
        // Ranks with different numbers of threads (hosts of different sizes): the statistics' slots are numbered
        // with the largest count, and the default mode trains as with equal counts (close to 1×1's loss).
        let a = Self.small("\(dir)/mixed", ["--image-batch-norm", "--threads", "2"]), b = Self.small("\(dir)/mixed", ["--image-batch-norm", "--threads", "1"])
        let mixed = try Tool.run(MPIToolTests.mpirun!, MPIToolTests.mpirunArguments(1, environment: [:]) + [Tool.binary] + a + [":"]
                                     + MPIToolTests.mpirunArguments(1, environment: [:]) + [Tool.binary] + b, timeout: 300)
        #expect(mixed.status == 0, "\(mixed.output)")
        #expect(Tool.exists("\(dir)/mixed/model.safetensors"))
        // bench reports the mode the trainer ran: batch normalisation never overlaps, and --overlap on is refused.
        let bench = try Tool.flow(["bench", "--arch", "realnvp-small", "--image-batch-norm", "--channels", "4", "--res-blocks", "1",
                                   "--steps", "1", "--warmup", "1", "--repeats", "1", "--threads", "1", "--overlap", "on"])
        #expect(bench.status != 0 && bench.output.contains("--overlap on: batch normalisation"), "\(bench.output)")
    }

    @Test("class-conditional image flow (digits, --condition class): the same bytes at 1×1, 1×2 and 2×2 in exact mode; each coupling's ResNet has its context weight; sample --class k decodes the same z to other images per class; evaluate reports the conditional and the marginal NLL")
    func classConditional() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let exact = ["--reproducible", "--micro-batch", "8", "--condition", "class"]
        let single = try Tool.flow(Self.small("\(dir)/1x1", exact + ["--threads", "1"]))
        try #require(single.status == 0, "\(single.output)")
        let reference = try #require(Tool.bytes("\(dir)/1x1/model.safetensors"))
        var layouts = [(1, 2)]
        if MPIToolTests.mpirun != nil { layouts.append((2, 2)) } else { print("2×2 skipped: mpirun not found") }
        for (ranks, threads) in layouts {
            let name = "\(ranks)x\(threads)"
            let args = Self.small("\(dir)/\(name)", exact + ["--threads", String(threads)])
            let r = ranks == 1 ? try Tool.flow(args) : try MPIToolTests.launch(ranks, args)
            #expect(r.status == 0, "\(name): \(r.output)")
            #expect(Tool.bytes("\(dir)/\(name)/model.safetensors") == reference, "\(name) differs from 1×1")
        }
        let model = try Checkpoint.load(path: "\(dir)/1x1/model.safetensors").model
        #expect(model.configuration.contextFeatures == 10 && model.configuration.contextClasses == 10)
        #expect(model.network.layout.slot(named: "levels.0.checkerboard.0.net.context.weight")?.shape == [4, 10])
        #expect(model.network.layout.slot(named: "final.checkerboard.0.net.context.weight")?.shape == [4, 10])
        // The same seed draws the same z: another class decodes it to another image, and a class to the same one.
        var samples: [[Double]] = []
        for k in [3, 7, 3] {
            let r = try Tool.flow(["sample", "--model", "\(dir)/1x1", "--class", String(k), "-n", "4", "--seed", "5",
                                   "--out", "\(dir)/class\(samples.count).npy", "--threads", "1"])
            try #require(r.status == 0, "\(r.output)")
            let table = try NPYReader.read(path: "\(dir)/class\(samples.count).npy")
            #expect(table.rows == 4 && table.columns == 64)
            let finite = table.values.allSatisfy { $0.isFinite }
            #expect(finite)
            samples.append(table.values)
        }
        #expect(samples[0] == samples[2])
        #expect(samples[0] != samples[1])
        // Temperatures 0 and 1: one block each, the same z scaled; τ = 0 decodes z = 0 (one image per class), τ = 1
        // is the single-temperature draw. As a PNG: 8 images of 8×8 in 4 columns, 2-pixel gaps.
        let tau = try Tool.flow(["sample", "--model", "\(dir)/1x1", "--class", "3", "-n", "4", "--seed", "5", "--temperature", "0,1",
                                 "--out", "\(dir)/tau.npy", "--threads", "1"])
        try #require(tau.status == 0, "\(tau.output)")
        let both = try NPYReader.read(path: "\(dir)/tau.npy")
        #expect(both.rows == 8)
        for i in 1..<4 { #expect(both.values[(i * 64)..<((i + 1) * 64)] == both.values[0..<64]) }
        #expect(Array(both.values[(4 * 64)...]) == samples[0])
        let png = try Tool.flow(["sample", "--model", "\(dir)/1x1", "--class", "3", "-n", "4", "--temperature", "0,1", "--columns", "4",
                                 "--out", "\(dir)/grid.png", "--threads", "1"])
        try #require(png.status == 0, "\(png.output)")
        let file = try #require(Tool.bytes("\(dir)/grid.png"))
        #expect(Array(file[12..<24]) == Array("IHDR".utf8) + [0, 0, 0, 42, 0, 0, 0, 22], "\(file.prefix(24))")
        let e = try Self.json(["evaluate", "--model", "\(dir)/1x1", "--json", "--threads", "2"])
        #expect((e["conditioned_on"] as? String)?.contains("class") == true, "\(e)")
        let nll = try #require(e["nll"] as? Double), marginal = try #require(e["marginal_nll"] as? Double)
        // Σ_c π_c p(x | c) ≥ π_y p(x | y): the marginal NLL is at most the conditional one + ln(1/π_y), π_y ≈ 1/10.
        #expect(marginal.isFinite && marginal <= nll + log(1 / 0.08), "\(marginal) vs \(nll)")
        let inspect = try Tool.flow(["inspect", "--model", "\(dir)/1x1"])
        #expect(inspect.stdout.contains("every coupling's ResNet adds W_c·c"), "\(inspect.stdout)")
    }

    @Test("sample --out FILE.png needs an image model: on moons a clear error, nothing written")
    func pngNeedsImages() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try Tool.flow(Tool.smallTraining(out: "\(dir)/moons", epochs: 1))
        try #require(r.status == 0, "\(r.output)")
        let png = try Tool.flow(["sample", "--model", "\(dir)/moons", "-n", "4", "--out", "\(dir)/s.png"])
        #expect(png.status != 0)
        #expect(png.stderr.contains("invalid --out \(dir)/s.png: a .png grid needs an image model"), "\(png.output)")
        #expect(!Tool.exists("\(dir)/s.png"))
    }

    @Test("fashion-mnist: --limit-rows trains on a slice; evaluate scores the official test set (first rows) in bits/dim of the 8-bit space")
    func fashionMNIST() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try Tool.flow(["train", "--dataset", "fashion-mnist", "--limit-rows", "200", "--epochs", "1", "--batch-size", "50",
                               "--out", "\(dir)/fm", "--quiet", "--no-plots", "--threads", "2"] + Array(Self.tiny.dropFirst(2)) + ["--scales", "2"],
                              timeout: 900)
        try #require(r.status == 0, "\(r.output)")
        let model = try Checkpoint.load(path: "\(dir)/fm/model.safetensors").model.configuration
        #expect(model.image?.input == ImageShape(channels: 1, height: 28, width: 28) && model.image?.levels == 2)
        #expect(model.preprocessing == .dequantizeLogit(levels: 256, alpha: 0.05))
        let e = try Self.json(["evaluate", "--model", "\(dir)/fm/model.safetensors", "--limit-rows", "100", "--json", "--threads", "2"])
        #expect((e["data"] as? String)?.contains("fashion-mnist test set, first 100 rows") == true, "\(e)")
        let bits = try #require(e["bits_per_dim"] as? Double)
        // Above the trained model's range but below uniform noise over 256 levels (8 bits/dim).
        #expect(bits > 2 && bits < 8, "\(bits) bits/dim")
    }

    @Test("--arch mlp is the MLP couplings: on moons the seed model as without it; on fashion-mnist it replaces the image preset")
    func archMLP() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let moons = try Tool.flow(["train", "--arch", "mlp", "--samples", "200", "--epochs", "1", "--hidden", "8", "--out", "\(dir)/moons",
                                   "--quiet", "--no-plots", "--threads", "1"])
        try #require(moons.status == 0, "\(moons.output)")
        let m = try Checkpoint.load(path: "\(dir)/moons/model.safetensors").model.configuration
        #expect(m.image == nil && m.dim == 2 && m.hidden == 8)
        let fm = try Tool.flow(["train", "--dataset", "fashion-mnist", "--arch", "mlp", "--limit-rows", "100", "--epochs", "1",
                                "--couplings", "2", "--hidden", "8", "--hidden-layers", "1", "--out", "\(dir)/fm", "--quiet", "--no-plots",
                                "--threads", "1"], timeout: 600)
        try #require(fm.status == 0, "\(fm.output)")
        let f = try Checkpoint.load(path: "\(dir)/fm/model.safetensors").model.configuration
        #expect(f.image == nil && f.dim == 784 && f.couplings == 2 && f.maskScheme == .checkerboard && f.imageShape == [28, 28])
    }

    @Test("bad flags: an image flow without images, image sizes without --arch, MLP sizes with an image flow; --split test without a test set", arguments: [
        (["train", "--dataset", "moons", "--arch", "realnvp-small"], "--arch realnvp-small needs images"),
        (["train", "--dataset", "digits", "--channels", "8"], "give --arch realnvp-small or realnvp-paper"),
        (["train", "--dataset", "digits", "--arch", "realnvp-small", "--hidden", "8"], "--hidden applies to the MLP couplings"),
        (["train", "--dataset", "digits", "--arch", "realnvp-small", "--scales", "4"], "invalid --scales 4"),
        (["train", "--dataset", "digits", "--limit-rows", "0"], "invalid --limit-rows 0"),
        (["train", "--dataset", "digits", "--arch", "mlp", "--channels", "8"], "apply to image flows (--arch realnvp-small or realnvp-paper), not --arch mlp"),
        (["train", "--dataset", "digits", "--arch", "realnvp-small", "--scales", "3"], "final.checkerboard.0 would be a checkerboard coupling on 8×1×1 images"),
        (["train", "--dataset", "digits", "--arch", "realnvp-small", "--image-batch-norm", "--image-act-norm"], "--image-batch-norm replaces ActNorm (drop --image-act-norm)"),
        (["train", "--dataset", "digits", "--image-batch-norm"], "give --arch realnvp-small or realnvp-paper"),
        (["train", "--dataset", "digits", "--arch", "realnvp-small", "--image-batch-norm", "--overlap", "on"], "--overlap on: batch normalisation"),
    ])
    func badFlags(args: [String], message: String) throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try Tool.flow(args + ["--out", "\(dir)/run", "--quiet"])
        #expect(r.status != 0)
        #expect(r.output.contains(message), "\(r.output)")
        #expect(!Tool.exists("\(dir)/run/model.safetensors"))
    }
}
