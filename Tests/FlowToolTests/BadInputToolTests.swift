import FlowCore
import Foundation
import Testing

/// Every bad input gets a precise message naming the file, line, flag or tensor, a non-zero exit, and
/// leaves no output behind.
@Suite("Bad input: precise errors, non-zero exit, no partial output", .serialized)
struct BadInputToolTests {
    struct Case: CustomStringConvertible, Sendable {
        var name: String
        /// Files to create in the case's directory: name → contents.
        var files: [String: String] = [:]
        /// Arguments; `DIR` is replaced by the case's directory.
        var arguments: [String]
        /// The exact error line expected on standard error (`DIR` replaced).
        var message: String
        var status: Int32 = 1
        var description: String { name }
    }

    static let train = ["train", "--epochs", "1", "--no-plots", "--quiet", "--out", "DIR/out"]
    static let cases: [Case] = [
        Case(name: "ragged CSV rows", files: ["d.csv": "1,2\n3,4\n5\n"], arguments: train + ["--data", "DIR/d.csv"],
             message: "error: DIR/d.csv:3: line has 1 field, expected 2 (from line 1)"),
        Case(name: "text in a numeric column", files: ["d.csv": "a,b\n1,2\n3,x\n"], arguments: train + ["--data", "DIR/d.csv"],
             message: "error: DIR/d.csv:3: column 2: expected a number, found \"x\""),
        Case(name: "NaN value", files: ["d.csv": "1,2\nnan,3\n"], arguments: train + ["--data", "DIR/d.csv"],
             message: "error: DIR/d.csv:2: column 1: value is NaN; remove or impute it"),
        Case(name: "Inf value", files: ["d.csv": "1,2\n3,-inf\n"], arguments: train + ["--data", "DIR/d.csv"],
             message: "error: DIR/d.csv:2: column 2: value is -Inf; remove or impute it"),
        Case(name: "empty file", files: ["d.csv": ""], arguments: train + ["--data", "DIR/d.csv"],
             message: "error: DIR/d.csv: file is empty"),
        Case(name: "header only", files: ["d.csv": "x,y\n"], arguments: train + ["--data", "DIR/d.csv"],
             message: "error: DIR/d.csv: file has a header (line 1) but no data rows"),
        Case(name: "D = 1", files: ["d.csv": "1\n2\n3\n4\n"], arguments: train + ["--data", "DIR/d.csv"],
             message: "error: DIR/d.csv has 1 column: a coupling layer needs D ≥ 2 features"),
        Case(name: "missing file", arguments: train + ["--data", "DIR/nope.csv"],
             message: "error: DIR/nope.csv: cannot open file: No such file or directory"),
        Case(name: "unknown file type", files: ["d.json": "[]"], arguments: train + ["--data", "DIR/d.json"],
             message: "error: DIR/d.json: unknown file type '.json': use .csv or .npy"),
        Case(name: "batch 0", arguments: train + ["--batch-size", "0"], message: "error: invalid --batch-size 0: need at least 1 row per batch"),
        Case(name: "lr 0", arguments: train + ["--lr", "0"], message: "error: invalid --lr 0.0: the learning rate must be a positive number"),
        Case(name: "lr < 0", arguments: train + ["--lr=-0.5"], message: "error: invalid --lr -0.5: the learning rate must be a positive number"),
        Case(name: "zero couplings", arguments: train + ["--couplings", "0"], message: "error: invalid --couplings 0: need at least 1 coupling layer"),
        Case(name: "zero hidden units", arguments: train + ["--hidden", "0"], message: "error: invalid --hidden 0: need at least 1 hidden unit"),
        Case(name: "zero hidden layers", arguments: train + ["--hidden-layers", "0"], message: "error: invalid --hidden-layers 0: need at least 1 hidden layer"),
        Case(name: "zero epochs", arguments: ["train", "--epochs", "0", "--out", "DIR/out"], message: "error: invalid --epochs 0: need at least 1 epoch"),
        Case(name: "validation fraction 1", arguments: train + ["--validation-fraction", "1"],
             message: "error: invalid --validation-fraction 1.0: must be in [0, 1)"),
        Case(name: "unknown data set", arguments: train + ["--dataset", "spiral"],
             message: "error: invalid --dataset: unknown data set 'spiral'; known: moons, circles, 8gaussians, pinwheel, 2spirals, checkerboard, digits, wine, breast-cancer"),
        Case(name: "zero threads", arguments: train + ["--threads", "0"], message: "error: invalid --threads 0: need at least 1"),
        Case(name: "unknown mask", arguments: train + ["--mask", "diagonal"],
             message: "Error: The value 'diagonal' is invalid for '--mask <mask>'. Please provide one of 'alternating' and 'checkerboard'.",
             status: 64),
        Case(name: "sample -n 0", arguments: ["sample", "--model", "DIR/m.safetensors", "-n", "0", "--out", "DIR/s.csv"],
             message: "error: invalid -n 0: need at least 1 sample"),
        Case(name: "sample to a .txt file", arguments: ["sample", "--model", "DIR/m.safetensors", "--out", "DIR/s.txt"],
             message: "error: invalid --out DIR/s.txt: the file name must end in .csv or .npy"),
        Case(name: "missing checkpoint", arguments: ["evaluate", "--model", "DIR/none.safetensors", "--dataset", "moons"],
             message: "error: DIR/none.safetensors: cannot open file: No such file or directory"),
        Case(name: "safetensors that is text", files: ["m.safetensors": "hello, this is not a checkpoint"],
             arguments: ["evaluate", "--model", "DIR/m.safetensors", "--dataset", "moons"],
             message: "error: DIR/m.safetensors: header length 8367736964726416744 exceeds the file size (31 bytes)"),
    ]

    @Test("each bad input", arguments: cases)
    func badInput(c: Case) throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (name, text) in c.files { try text.write(toFile: "\(dir)/\(name)", atomically: true, encoding: .utf8) }
        let r = try Tool.flow(c.arguments.map { $0.replacingOccurrences(of: "DIR", with: dir) })
        #expect(r.status == c.status, "\(c.name): exit \(r.status)\n\(r.output)")
        let expected = c.message.replacingOccurrences(of: "DIR", with: dir)
        #expect(r.stderr.split(separator: "\n").contains { $0 == expected }, "\(c.name): expected\n\(expected)\ngot\n\(r.stderr)")
        #expect(!Tool.exists("\(dir)/out"), "\(c.name) left an output directory behind")
        #expect(!Tool.exists("\(dir)/s.csv") && !Tool.exists("\(dir)/s.txt"))
    }

    /// A trained model for the checkpoint cases, made once.
    static func trainedModel(_ dir: String) throws -> String {
        let r = try Tool.flow(Tool.smallTraining(out: "\(dir)/run", epochs: 1))
        #expect(r.status == 0, "\(r.output)")
        return "\(dir)/run/model.safetensors"
    }

    @Test("checkpoints: truncated, corrupted header, another shape, wrong width, existing run")
    func checkpoints() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try Self.trainedModel(dir)
        let bytes = try #require(Tool.bytes(model))
        func expectError(_ args: [String], _ message: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let r = try Tool.flow(args)
            #expect(r.status == 1, "exit \(r.status): \(r.output)", sourceLocation: sourceLocation)
            #expect(r.stderr.split(separator: "\n").contains { $0 == message }, "expected\n\(message)\ngot\n\(r.stderr)", sourceLocation: sourceLocation)
        }
        // Truncated: the last tensor's bytes are missing.
        try Data(bytes.prefix(bytes.count - 10)).write(to: URL(fileURLWithPath: "\(dir)/trunc.safetensors"))
        let headerLength = Int(bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        try expectError(["inspect", "--model", "\(dir)/trunc.safetensors"],
                        "error: \(dir)/trunc.safetensors: tensor 'training.best_epoch': data_offsets [\(bytes.count - 16 - headerLength), \(bytes.count - 8 - headerLength)] end beyond the data buffer (\(bytes.count - 18 - headerLength) bytes)")
        // Corrupted header: JSON broken.
        var corrupt = bytes
        corrupt[8] = UInt8(ascii: "[")
        try Data(corrupt).write(to: URL(fileURLWithPath: "\(dir)/corrupt.safetensors"))
        let rc = try Tool.flow(["inspect", "--model", "\(dir)/corrupt.safetensors"])
        #expect(rc.status == 1)
        #expect(rc.stderr.hasPrefix("error: \(dir)/corrupt.safetensors: header is not valid JSON"), "\(rc.stderr)")
        // Another shape: metadata claims hidden 32 but the tensors are hidden 16.
        let file = try SafeTensorsFile(path: model)
        var w = SafeTensorsWriter()
        w.metadata = file.metadata
        w.metadata["model"] = file.metadata["model"]!.replacingOccurrences(of: "\"hidden\":16", with: "\"hidden\":32")
        for name in file.names { let i = try file.info(name); w.add(name: name, dtype: i.dtype, shape: i.shape, bytes: try file.rawBytes(name)) }
        try w.write(to: "\(dir)/shape.safetensors")
        try expectError(["evaluate", "--model", "\(dir)/shape.safetensors", "--dataset", "moons"],
                        "error: \(dir)/shape.safetensors: tensor 'couplings.0.s.0.weight' has shape [16, 2], this model (D=2, 4 couplings, 2×32 hidden, alternating masks) expects [32, 2]")
        // A data file whose width does not match the model.
        try "1,2,3\n4,5,6\n".write(toFile: "\(dir)/three.csv", atomically: true, encoding: .utf8)
        try expectError(["evaluate", "--model", model, "--data", "\(dir)/three.csv"],
                        "error: \(dir)/three.csv: has 3 columns; the model expects D = 2")
        try expectError(["encode", "--model", model, "--data", "\(dir)/three.csv", "--out", "\(dir)/z.csv"],
                        "error: \(dir)/three.csv: has 3 columns; the model expects D = 2")
        #expect(!Tool.exists("\(dir)/z.csv"))
        // Training into an existing run is refused; the good checkpoint stays.
        try expectError(Tool.smallTraining(out: "\(dir)/run", epochs: 1),
                        "error: \(dir)/run: already holds a trained model; use --resume \(dir)/run to continue it, --force to overwrite it, or another --out")
        #expect(Tool.bytes(model) == bytes)
        // Resuming a directory that is not a run.
        try expectError(["train", "--resume", "\(dir)/nothing"],
                        "error: \(dir)/nothing/config.json: cannot read the run's config.json (is \(dir)/nothing a training run directory?)")
    }
}
