import FlowCore
import Foundation
import Testing

/// Conditional flows p(x | c) through the tool, against known answers: the moons' ln 2, a linear-Gaussian's
/// exact conditional log-likelihood, and bad input refused with nothing written.
@Suite("Conditional flows (tool)", .serialized)
struct ConditionalToolTests {
    /// The mean NLL (nats) `evaluate --json` reports (or another field of its output).
    static func nll(_ args: [String], field: String = "nll") throws -> Double {
        let r = try Tool.flow(["evaluate", "--json", "--threads", "2"] + args)
        try #require(r.status == 0, "\(r.output)")
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        return try #require(object?[field] as? Double, "\(r.stdout)")
    }

    /// Rows of a CSV written by the tool (header first).
    static func rows(_ path: String) throws -> [[Double]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").dropFirst()
            .map { $0.split(separator: ",").map { Double($0)! } }
    }

    /// The moons barely overlap, so p(x | c) ≈ 2·p(x) on the right moon: the conditional model's own marginal
    /// Σ_c ½·p(x | c) scores its conditional NLL + ln 2. Against a separately trained unconditional flow the gain is
    /// at least ln 2, and more by that flow's own excess (a flow bends one Gaussian into two disjoint moons only
    /// approximately; BENCHMARKS.md §12 has the seed model's numbers).
    @Test("two moons with the moon as context: the model's marginal NLL = conditional NLL + ln 2; the unconditional flow's NLL is above it by ≥ ln 2; samples of class k fall on moon k (≥ 99 % by 5-NN)")
    func moonsGainLn2() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A smaller model than the seed's, trained for fewer steps (the seed model's numbers are in BENCHMARKS.md).
        let common = ["train", "--samples", "1500", "--hidden", "32", "--hidden-layers", "2", "--couplings", "6",
                      "--lr", "1e-3", "--batch-size", "128", "--epochs", "40", "--threads", "2", "--quiet", "--no-plots"]
        for (name, extra) in [("plain", [String]()), ("cond", ["--condition", "class"])] {
            let r = try Tool.flow(common + ["--out", "\(dir)/\(name)"] + extra, timeout: 900)
            try #require(r.status == 0, "\(r.output)")
        }
        let plain = try Self.nll(["--model", "\(dir)/plain"]), cond = try Self.nll(["--model", "\(dir)/cond"])
        let marginal = try Self.nll(["--model", "\(dir)/cond"], field: "marginal_nll")
        #expect(abs(marginal - cond - log(2.0)) < 0.01, "marginal \(marginal) − conditional \(cond) NLL vs ln 2 = \(log(2.0))")
        #expect(plain - cond > log(2.0) - 0.05, "NLL \(plain) (p(x)) − \(cond) (p(x | moon)) = \(plain - cond), ln 2 = \(log(2.0))")
        #expect(cond < 0, "the conditional NLL \(cond) nats (a moon of noise 0.05 has entropy ≈ −0.43; the unconditional ≈ 0.26)")
        // The moons the runs trained on (seed 0): a 5-nearest-neighbour vote names each sample's moon.
        let x = ToyDataset.moons.generate(count: 1500, seed: 0), labels = ToyDataset.moons.labels(count: 1500, seed: 0)!
        func moon(_ p: [Double]) -> Int {
            var nearest: [(Double, Int)] = []
            for i in 0..<x.rows {
                let d = (x[i, 0] - p[0]) * (x[i, 0] - p[0]) + (x[i, 1] - p[1]) * (x[i, 1] - p[1])
                if nearest.count < 5 || d < nearest[4].0 {
                    nearest.append((d, labels[i]))
                    nearest.sort { $0.0 < $1.0 }
                    if nearest.count > 5 { nearest.removeLast() }
                }
            }
            return nearest.filter { $0.1 == 1 }.count >= 3 ? 1 : 0
        }
        for k in 0...1 {
            let r = try Tool.flow(["sample", "--model", "\(dir)/cond", "--class", String(k), "-n", "2000", "--seed", "3",
                                   "--out", "\(dir)/class\(k).csv", "--threads", "2"])
            try #require(r.status == 0, "\(r.output)")
            let samples = try Self.rows("\(dir)/class\(k).csv")
            let right = samples.filter { moon($0) == k }.count
            #expect(samples.count == 2000 && right >= 1980, "class \(k): \(right) of \(samples.count) samples on moon \(k)")
        }
    }

    /// x | c ~ N(A·c + b, L·Lᵀ), c ~ N(0, I₂), D = 3: `[rows, 5]` (x then c) from the seeded generator.
    static func linearGaussian(rows: Int, substream: UInt32) -> Matrix<Double> {
        let r = RandomStream(seed: 11, purpose: .auxiliary, substream: substream)
        var v = [Double]()
        for i in 0..<rows {
            let g = (0..<5).map { r.normal(UInt64(i * 5 + $0)) }
            let c = [g[3], g[4]]
            for a in 0..<3 {
                let mean = LinearGaussian.a[a][0] * c[0] + LinearGaussian.a[a][1] * c[1] + LinearGaussian.b[a]
                v.append(mean + (0..<3).reduce(0.0) { $0 + LinearGaussian.l[a][$1] * g[$1] })
            }
            v += c
        }
        return Matrix(rows: rows, columns: 5, values: v)
    }

    enum LinearGaussian {
        static let a = [[1.0, -0.5], [0.3, 0.8], [-0.7, 0.2]]
        static let b = [0.5, -1.0, 2.0]
        static let l = [[0.6, 0, 0], [0.3, 0.5, 0], [-0.2, 0.4, 0.3]]
        /// log N(x; A·c + b, L·Lᵀ) with L lower triangular: solve L·u = x − mean.
        static func logLikelihood(_ row: [Double]) -> Double {
            var u = [Double](repeating: 0, count: 3)
            for i in 0..<3 {
                let r = row[i] - (a[i][0] * row[3] + a[i][1] * row[4] + b[i])
                u[i] = (r - (0..<i).reduce(0.0) { $0 + l[i][$1] * u[$1] }) / l[i][i]
            }
            let logDetL = log(l[0][0]) + log(l[1][1]) + log(l[2][2])
            return -0.5 * u.reduce(0) { $0 + $1 * $1 } - logDetL - 1.5 * log(2 * Double.pi)
        }
    }

    static func writeCSV(_ m: Matrix<Double>, header: String, to path: String) throws {
        var text = header + "\n"
        for i in 0..<m.rows { text += m.row(i).map { "\($0)" }.joined(separator: ",") + "\n" }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    @Test("linear-Gaussian x | c ~ N(A·c + b, Σ), D = 3, K = 2: the held-out conditional log-likelihood within 0.02 nats of the true one")
    func linearGaussianKnownAnswer() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // 40 000 rows and a small network for ten epochs (a minute in a debug build); BENCHMARKS.md §12 has a larger run.
        let train = Self.linearGaussian(rows: 40_000, substream: 1), test = Self.linearGaussian(rows: 5_000, substream: 2)
        try Self.writeCSV(train, header: "x0,x1,x2,c0,c1", to: "\(dir)/train.csv")
        try Self.writeCSV(test, header: "x0,x1,x2,c0,c1", to: "\(dir)/test.csv")
        let r = try Tool.flow(["train", "--data", "\(dir)/train.csv", "--context-columns", "2", "--hidden", "16", "--hidden-layers", "2",
                               "--couplings", "4", "--lr", "3e-3", "--schedule", "cosine", "--batch-size", "256", "--epochs", "10",
                               "--threads", "2", "--out", "\(dir)/run", "--quiet", "--no-plots"], timeout: 1200)
        try #require(r.status == 0, "\(r.output)")
        let flow = try Self.nll(["--model", "\(dir)/run", "--data", "\(dir)/test.csv"])
        let truth = -(0..<test.rows).reduce(0.0) { $0 + LinearGaussian.logLikelihood(test.row($1)) } / Double(test.rows)
        #expect(abs(flow - truth) <= 0.02, "held-out conditional NLL: flow \(flow), true \(truth)")
        // The same numbers with the contexts in their own file.
        try Self.writeCSV(test.columns(0..<3), header: "x0,x1,x2", to: "\(dir)/x.csv")
        try Self.writeCSV(test.columns(3..<5), header: "c0,c1", to: "\(dir)/c.csv")
        #expect(try Self.nll(["--model", "\(dir)/run", "--data", "\(dir)/x.csv", "--context", "\(dir)/c.csv"]) == flow)
    }

    @Test("bad context input: another row count, another width, --class out of range or on an unconditional model: a clear error, nothing written")
    func badContextInput() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (name, extra) in [("plain", [String]()), ("cond", ["--condition", "class"])] {
            let r = try Tool.flow(Tool.smallTraining(out: "\(dir)/\(name)", epochs: 1, extra: extra))
            try #require(r.status == 0, "\(r.output)")
        }
        try "x0,x1\n0.1,0.2\n0.3,0.4\n0.5,0.6\n".write(toFile: "\(dir)/x.csv", atomically: true, encoding: .utf8)
        try "c0,c1\n1,0\n0,1\n".write(toFile: "\(dir)/c2.csv", atomically: true, encoding: .utf8)
        try "c0,c1,c2\n1,0,0\n".write(toFile: "\(dir)/c3.csv", atomically: true, encoding: .utf8)
        try "c0,c1\n1,0\n0.5,0.5\n1,0\n".write(toFile: "\(dir)/soft.csv", atomically: true, encoding: .utf8)
        let cond = "\(dir)/cond", plain = "\(dir)/plain", out = "\(dir)/out.csv"
        let cases: [([String], String)] = [
            (["encode", "--model", cond, "--data", "\(dir)/x.csv", "--context", "\(dir)/c2.csv", "--out", out],
             "error: \(dir)/c2.csv: has 2 rows for 3 rows of \(dir)/x.csv; give one row of c per row, or one row for all"),
            (["decode", "--model", cond, "--data", "\(dir)/x.csv", "--context", "\(dir)/c3.csv", "--out", out],
             "error: \(dir)/c3.csv: has 3 columns; the model's context has K = 2"),
            (["sample", "--model", cond, "--class", "2", "-n", "5", "--out", out], "error: invalid --class 2: the model has classes 0…1"),
            (["sample", "--model", cond, "--class=-1", "-n", "5", "--out", out], "error: invalid --class -1: the model has classes 0…1"),
            (["sample", "--model", plain, "--class", "0", "-n", "5", "--out", out],
             "error: --class 0: the model is unconditional; --class needs a model trained with --condition class"),
            (["sample", "--model", cond, "-n", "5", "--out", out],
             "error: the model is a class-conditional model p(x | class) with 2 classes: give --context FILE with one row of c per row of samples (-n), or one row for all (or --class k)"),
            (["encode", "--model", plain, "--data", "\(dir)/x.csv", "--context", "\(dir)/c2.csv", "--out", out],
             "error: --context \(dir)/c2.csv: the model is unconditional; it takes no context"),
            (["evaluate", "--model", cond, "--data", "\(dir)/x.csv"],
             "error: the model is a class-conditional model p(x | class) with 2 classes, read from the class (of a labelled data set, or a file's last column): \(dir)/x.csv has 2 columns; need D ≥ 2 features and a last column with the class; or give the contexts with --context FILE"),
            (["sample", "--model", cond, "--class", "1", "--context", "\(dir)/c2.csv", "-n", "5", "--out", out],
             "error: give either --context or --class, not both"),
            (["encode", "--model", cond, "--data", "\(dir)/x.csv", "--context", "\(dir)/soft.csv", "--out", out],
             "error: \(dir)/soft.csv: row 2 is [0.5, 0.5], not a one-hot class; the model is class-conditional: each row needs a single 1 among 0s (or use --class k)"),
            (["evaluate", "--model", cond, "--context", "\(dir)/c2.csv"],
             "error: --context \(dir)/c2.csv applies with --data or --dataset: the run's own splits carry their own contexts"),
        ]
        for (args, message) in cases {
            let r = try Tool.flow(args + ["--threads", "1"])
            #expect(r.status != 0, "\(args)")
            #expect(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines) == message, "\(args): \(r.stderr)")
            #expect(!Tool.exists(out), "\(args) wrote \(out)")
        }
        // train: both conditionings at once, and K columns that leave fewer than 2 features.
        let both = try Tool.flow(Tool.smallTraining(out: "\(dir)/x", extra: ["--condition", "class", "--context-columns", "1"]))
        #expect(both.status != 0 && both.stderr.contains("give either --context-columns or --condition class, not both"), "\(both.output)")
        let narrow = try Tool.flow(["train", "--data", "\(dir)/x.csv", "--context-columns", "1", "--out", "\(dir)/y", "--epochs", "1"])
        #expect(narrow.status != 0 && narrow.stderr.contains("invalid --context-columns 1: \(dir)/x.csv has 2 columns; need at least 3"), "\(narrow.output)")
        #expect(!Tool.exists("\(dir)/y/model.safetensors"))
        // A class column with a gap, or one huge class: refused before anything is created.
        for (name, last) in [("gap", "3"), ("huge", "1000000")] {
            var text = "a,b,k\n"
            for i in 0..<20 { text += "\(i),\(i % 7),\(i == 19 ? last : String(i % 2))\n" }
            try text.write(toFile: "\(dir)/\(name).csv", atomically: true, encoding: .utf8)
            let r = try Tool.flow(["train", "--data", "\(dir)/\(name).csv", "--condition", "class", "--out", "\(dir)/\(name)", "--epochs", "1"])
            #expect(r.status != 0, "\(r.output)")
            let expected = name == "gap" ? "the classes run up to 3 (row 20), but 1 of 0 … 3 never occur (the first: 2)"
                : "row 20, column 3 holds class 1000000; more than the 20 rows could hold"
            #expect(r.stderr.contains(expected), "\(r.stderr)")
            #expect(!Tool.exists("\(dir)/\(name)"))
        }
    }

    @Test("a class-conditional run resumed after 2 of 3 epochs writes the straight run's bytes; resuming with another conditioning is refused")
    func resume() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let straight = try Tool.flow(Tool.smallTraining(out: "\(dir)/straight", epochs: 3, extra: ["--condition", "class", "--threads", "2"]))
        let first = try Tool.flow(Tool.smallTraining(out: "\(dir)/resumed", epochs: 2, extra: ["--condition", "class", "--threads", "2"]))
        try #require(straight.status == 0 && first.status == 0, "\(straight.output)\(first.output)")
        let resumed = try Tool.flow(["train", "--resume", "\(dir)/resumed", "--epochs", "3", "--threads", "2", "--quiet", "--no-plots"])
        #expect(resumed.status == 0, "\(resumed.output)")
        #expect(Tool.bytes("\(dir)/straight/model.safetensors") == Tool.bytes("\(dir)/resumed/model.safetensors"))
        let other = try Tool.flow(["train", "--resume", "\(dir)/resumed", "--epochs", "4", "--context-columns", "1", "--threads", "2"])
        #expect(other.status != 0 && other.stderr.contains("conditioned on the class vs"), "\(other.output)")
    }
}
