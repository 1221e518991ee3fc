import Foundation
import Testing

/// Output that would hold NaN or ±∞ is refused: one `error:` line naming the file, row or flag and the likely
/// cause, status 1, and no output file; sample counts beyond the machine's memory are refused up front.
@Suite("Non-finite output: refused with the cause, nothing written", .serialized)
struct NonFiniteOutputTests {
    /// A small trained model in `dir/run`, and the same model with the translation biases of couplings 0 and 2
    /// set to 3e38 (finite, so the loader accepts it) in `dir/huge.safetensors`: its g(z) overflows.
    static func models(_ dir: String) throws -> (good: String, huge: String) {
        let r = try Tool.flow(Tool.smallTraining(out: "\(dir)/run", epochs: 1))
        #expect(r.status == 0, "\(r.output)")
        let huge = "\(dir)/huge.safetensors"
        try setTensors(from: "\(dir)/run/model.safetensors", to: huge,
                       ["couplings.0.t.2.bias": 3e38, "couplings.2.t.2.bias": 3e38])
        return ("\(dir)/run", huge)
    }

    /// Copies a safetensors file, setting every element of the named F32 or F64 tensors to a value.
    static func setTensors(from source: String, to destination: String, _ values: [String: Double]) throws {
        var bytes = try #require(Tool.bytes(source))
        let headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try #require(try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + headerLength)])) as? [String: Any])
        for (name, value) in values {
            let entry = try #require(header[name] as? [String: Any], "no tensor \(name)")
            let offsets = try #require(entry["data_offsets"] as? [Int])
            let f64 = entry["dtype"] as? String == "F64"
            for at in stride(from: 8 + headerLength + offsets[0], to: 8 + headerLength + offsets[1], by: f64 ? 8 : 4) {
                if f64 {
                    withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.replaceSubrange(at..<(at + 8), with: $0) }
                } else {
                    withUnsafeBytes(of: Float(value).bitPattern.littleEndian) { bytes.replaceSubrange(at..<(at + 4), with: $0) }
                }
            }
        }
        try Data(bytes).write(to: URL(fileURLWithPath: destination))
    }

    /// Runs `arguments` (`DIR` replaced) and checks status 1, exactly `message` on standard error, nothing on
    /// standard output, and no file at `out`.
    static func expectRefused(_ arguments: [String], dir: String, message: String, out: String? = nil) throws {
        let r = try Tool.flow(arguments.map { $0.replacingOccurrences(of: "DIR", with: dir) })
        #expect(r.status == 1, "\(r.output)")
        #expect(r.stderr == message.replacingOccurrences(of: "DIR", with: dir) + "\n")
        #expect(r.stdout.isEmpty)
        if let out { #expect(!Tool.exists(out.replacingOccurrences(of: "DIR", with: dir)), "\(out) was written") }
    }

    @Test("sample --temperature 1e300 writes nothing and names the temperature; huge weights name the model")
    func sample() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (good, huge) = try Self.models(dir)
        for out in ["DIR/s.csv", "DIR/s.npy"] {
            try Self.expectRefused(["sample", "--model", good, "-n", "1000", "--temperature", "1e300", "--out", out], dir: dir,
                                   message: "error: 1000 of 1000 samples are not finite (--temperature 1e+300 overflows): nothing written",
                                   out: out)
            try Self.expectRefused(["sample", "--model", huge, "-n", "3", "--out", out], dir: dir,
                                   message: "error: 3 of 3 samples are not finite (the model's g(z) overflows at --temperature 1.0; "
                                       + "its largest |parameter| is 3e+38): nothing written",
                                   out: out)
        }
    }

    @Test("--temperature must be finite and ≥ 0; 0 is allowed and gives g(0) for every sample")
    func temperature() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (good, _) = try Self.models(dir)
        for (value, shown) in [("-1", "-1.0"), ("inf", "inf"), ("nan", "nan")] {
            try Self.expectRefused(["sample", "--model", good, "--temperature=\(value)", "--out", "DIR/s.csv"], dir: dir,
                                   message: "error: invalid --temperature \(shown): must be finite and ≥ 0", out: "DIR/s.csv")
        }
        let r = try Tool.flow(["sample", "--model", good, "-n", "4", "--temperature", "0", "--out", "\(dir)/mode.csv"])
        #expect(r.status == 0, "\(r.output)")
        let rows = try String(contentsOfFile: "\(dir)/mode.csv", encoding: .utf8).split(separator: "\n").dropFirst()
        #expect(rows.count == 4 && Set(rows).count == 1)
    }

    @Test("sample -n beyond the machine's memory is refused, naming -n and the bytes needed")
    func sampleMemory() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (good, _) = try Self.models(dir)
        let physical = sysconf(Int32(_SC_PHYS_PAGES)) * sysconf(Int32(_SC_PAGESIZE))
        try Self.expectRefused(["sample", "--model", good, "-n", "100000000000000", "--out", "DIR/s.npy"], dir: dir,
                               message: "error: invalid -n 100000000000000: 100000000000000 samples of D = 2 need about "
                                   + "4000000000000000 bytes of memory; this machine has \(physical)",
                               out: "DIR/s.npy")
        try Self.expectRefused(["sample", "--model", good, "-n", "\(Int.max)", "--out", "DIR/s.npy"], dir: dir,
                               message: "error: invalid -n \(Int.max): \(Int.max) samples of D = 2 need more than \(Int.max) "
                                   + "bytes of memory; this machine has \(physical)",
                               out: "DIR/s.npy")
    }

    @Test("decode of an overflowing latent and encode through huge weights name the file and line; values beyond Float's range are refused by the reader")
    func transform() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (good, huge) = try Self.models(dir)
        try "0,0\n1e38,-1e38\n".write(toFile: "\(dir)/z.csv", atomically: true, encoding: .utf8)
        try "x,y\n\n1,0\n0.5,0.5\n".write(toFile: "\(dir)/x.csv", atomically: true, encoding: .utf8)
        try "x,y\n1,0\n1e39,0\n".write(toFile: "\(dir)/big.csv", atomically: true, encoding: .utf8)
        for out in ["DIR/o.csv", "DIR/o.npy"] {
            try Self.expectRefused(["decode", "--model", good, "--data", "DIR/z.csv", "--out", out], dir: dir,
                                   message: "error: DIR/z.csv:2: decoding gives non-finite values (1 of 2 rows): "
                                       + "the model's g(z) overflows there: nothing written",
                                   out: out)
            try Self.expectRefused(["encode", "--model", huge, "--data", "DIR/x.csv", "--out", out], dir: dir,
                                   message: "error: DIR/x.csv:3: encoding gives non-finite values (2 of 2 rows): "
                                       + "the model's f(x) overflows there: nothing written",
                                   out: out)
            // Values beyond Float's range are refused by the reader, before the model sees them.
            try Self.expectRefused(["encode", "--model", good, "--data", "DIR/big.csv", "--out", out], dir: dir,
                                   message: "error: DIR/big.csv:3: column 1: value 1e+39 is outside the Float32 range (±3.4e38)",
                                   out: out)
        }
    }

    @Test("evaluate with a non-finite log-likelihood fails cleanly in text and JSON mode, naming the data")
    func evaluate() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (good, huge) = try Self.models(dir)
        try "x,y\n1,0\n0.5,0.5\n".write(toFile: "\(dir)/x.csv", atomically: true, encoding: .utf8)
        try "x,y\n1,0\n1e39,0\n".write(toFile: "\(dir)/big.csv", atomically: true, encoding: .utf8)
        for json in [[], ["--json"]] {
            try Self.expectRefused(["evaluate", "--model", huge, "--data", "DIR/x.csv"] + json, dir: dir,
                                   message: "error: DIR/x.csv:2: log p(x) is NaN (2 of 2 rows): the model's density overflows there: "
                                       + "no NLL reported")
            try Self.expectRefused(["evaluate", "--model", good, "--data", "DIR/big.csv"] + json, dir: dir,
                                   message: "error: DIR/big.csv:3: column 1: value 1e+39 is outside the Float32 range (±3.4e38)")
            try Self.expectRefused(["evaluate", "--model", huge, "--split", "both"] + json, dir: dir,
                                   message: "error: moons (300 points, noise 0.05, seed 0), train split: row 1: log p(x) is NaN "
                                       + "(240 of 240 rows): the model's density overflows there: no NLL reported")
        }
    }

    @Test("a checkpoint whose recorded best NLL is NaN or ±∞ is refused on load (inspect --json crashed in the encoder)")
    func inspect() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try Self.models(dir)
        for (value, shown) in [(Double.nan, "nan"), (.infinity, "inf")] {
            try Self.setTensors(from: "\(dir)/run/model.safetensors", to: "\(dir)/bad.safetensors", ["training.best_validation_nll": value])
            for json in [[], ["--json"]] {
                try Self.expectRefused(["inspect", "--model", "DIR/bad.safetensors"] + json, dir: dir,
                                       message: "error: DIR/bad.safetensors: tensor 'training.best_validation_nll' = \(shown) is not finite")
            }
        }
    }
}
