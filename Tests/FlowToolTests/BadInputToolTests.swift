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

    /// This machine's physical memory in bytes, as the tool computes it.
    static let physicalMemory = MachineMemory.physicalBytes
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
        Case(name: "value beyond Float32's range", files: ["d.csv": "1,2\n3,4\n5,1e39\n7,8\n"], arguments: train + ["--data", "DIR/d.csv"],
             message: "error: DIR/d.csv:3: column 2: value 1e+39 is outside the Float32 range (±3.4e38)"),
        Case(name: "noise that takes the points beyond Float32's range", arguments: train + ["--noise", "1e300"],
             message: "error: invalid --noise 1e+300: the generated moons point 1 has a coordinate of -6.19498324297612e+299, outside the Float32 range (±3.4e38); use a smaller noise"),
        Case(name: "more samples than fit in memory", arguments: train + ["--samples", "100000000000"],
             message: "error: invalid --samples 100000000000: the points and their working copies need 6400000000000 bytes (64 per point), more than this machine's memory (\(physicalMemory) bytes)"),
        Case(name: "more threads than libdispatch's pool runs (it would wait for the 257th forever)", arguments: train + ["--threads", "257"],
             message: "error: invalid --threads 257: at most 256 worker threads per rank (libdispatch's thread limit on Linux); on a machine with more cores, run several ranks per host (mpirun -np N --map-by socket)"),
        Case(name: "bench: more threads than libdispatch's pool runs", arguments: ["bench", "--threads", "1,300", "--steps", "1"],
             message: "error: invalid --threads 300: at most 256 worker threads per rank (libdispatch's thread limit on Linux)"),
        Case(name: "an output directory under a file", files: ["f.csv": "1,2\n"],
             arguments: ["train", "--epochs", "1", "--no-plots", "--quiet", "--out", "DIR/f.csv/out"],
             message: "error: DIR/f.csv/out: cannot create the output directory (DIR/f.csv): a file of that name exists, not a directory"),
        Case(name: "a negative warm-up", arguments: train + ["--warmup-steps=-1", "--schedule", "cosine"],
             message: "error: invalid --warmup-steps -1: must be 0 or more"),
        Case(name: "a warm-up longer than the run (1 epoch of 10 steps at the default 3000 points)", arguments: train + ["--warmup-steps", "11"],
             message: "error: invalid --warmup-steps 11: longer than the run's 10 steps (epochs × steps per epoch): the rate would never reach its peak"),
        Case(name: "a mistyped subcommand", arguments: ["trian", "--epochs", "1", "--out", "DIR/out"],
             message: "Error: unknown subcommand 'trian' (did you mean 'train'?); the subcommands are train, sample, evaluate, encode, decode, inspect, bench",
             status: 64),
        Case(name: "negative noise", arguments: train + ["--noise=-0.1"], message: "error: invalid --noise -0.1: must be a finite number ≥ 0"),
        Case(name: "empty file", files: ["d.csv": ""], arguments: train + ["--data", "DIR/d.csv"],
             message: "error: DIR/d.csv: file is empty"),
        Case(name: "CR-only line endings", files: ["d.csv": "1,2\r3,4\r5,6\r"], arguments: train + ["--data", "DIR/d.csv"],
             message: "error: DIR/d.csv:1: carriage return (\\r) not followed by a newline: CR-only line endings (classic Mac OS) are not supported; convert them to \\n, e.g. tr '\\r' '\\n' < in.csv > out.csv"),
        Case(name: "header only", files: ["d.csv": "x,y\n"], arguments: train + ["--data", "DIR/d.csv"],
             message: "error: DIR/d.csv: file has a header (line 1) but no data rows"),
        Case(name: "one row", files: ["d.csv": "1,2\n"], arguments: train + ["--data", "DIR/d.csv"],
             message: "error: DIR/d.csv: only 1 training row after holding out 0 of 1 row for validation; need at least 2"),
        Case(name: "one training row after the split", arguments: train + ["--samples", "5", "--validation-fraction", "0.8"],
             message: "error: --dataset moons: only 1 training row after holding out 4 of 5 rows for validation; need at least 2"),
        Case(name: "--samples with a file", files: ["d.csv": "1,2\n3,4\n5,6\n"], arguments: train + ["--data", "DIR/d.csv", "--samples", "300"],
             message: "error: --samples applies to synthetic data sets (--dataset), not to --data FILE"),
        Case(name: "--noise with a file", files: ["d.csv": "1,2\n3,4\n5,6\n"], arguments: train + ["--data", "DIR/d.csv", "--noise", "0.1"],
             message: "error: --noise applies to synthetic data sets (--dataset), not to --data FILE"),
        Case(name: "--samples with a bundled data set", arguments: train + ["--dataset", "wine", "--samples", "100"],
             message: "error: --samples applies to synthetic data sets, not to the bundled data set wine"),
        Case(name: "D = 1", files: ["d.csv": "1\n2\n3\n4\n"], arguments: train + ["--data", "DIR/d.csv"],
             message: "error: DIR/d.csv has 1 column: a coupling layer needs D ≥ 2 features"),
        Case(name: "constant column", files: ["d.csv": "1,5\n2,5\n3,5\n4,5\n5,5\n"], arguments: train + ["--data", "DIR/d.csv"],
             message: "error: DIR/d.csv: feature 2 (1-based column) is constant in the training split (std = 0); a density on it is degenerate: drop the column"),
        Case(name: "missing file", arguments: train + ["--data", "DIR/nope.csv"],
             message: "error: DIR/nope.csv: cannot open file: No such file or directory"),
        Case(name: "unknown file type", files: ["d.json": "[]"], arguments: train + ["--data", "DIR/d.json"],
             message: "error: DIR/d.json: unknown file type '.json': use .csv, .npy or an IDX file (*-idx3-ubyte[.gz])"),
        Case(name: "batch 0", arguments: train + ["--batch-size", "0"], message: "error: invalid --batch-size 0: need at least 1 row per batch"),
        Case(name: "plot points beyond any plot", arguments: train + ["--plot-points", "200000000000000000"],
             message: "error: invalid --plot-points 200000000000000000: need 1 to 10000000"),
        Case(name: "lr 0", arguments: train + ["--lr", "0"], message: "error: invalid --lr 0.0: the learning rate must be a positive number"),
        Case(name: "lr < 0", arguments: train + ["--lr=-0.5"], message: "error: invalid --lr -0.5: the learning rate must be a positive number"),
        Case(name: "zero couplings", arguments: train + ["--couplings", "0"], message: "error: invalid --couplings 0: need at least 1 coupling layer"),
        Case(name: "zero hidden units", arguments: train + ["--hidden", "0"], message: "error: invalid --hidden 0: need at least 1 hidden unit"),
        Case(name: "zero hidden layers", arguments: train + ["--hidden-layers", "0"], message: "error: invalid --hidden-layers 0: need at least 1 hidden layer"),
        Case(name: "zero epochs", arguments: ["train", "--epochs", "0", "--out", "DIR/out"], message: "error: invalid --epochs 0: need at least 1 epoch"),
        Case(name: "validation fraction 1", arguments: train + ["--validation-fraction", "1"],
             message: "error: invalid --validation-fraction 1.0: must be in [0, 1)"),
        Case(name: "unknown data set", arguments: train + ["--dataset", "spiral"],
             message: "error: invalid --dataset: unknown data set 'spiral'; known: moons, circles, 8gaussians, pinwheel, 2spirals, checkerboard, digits, wine, breast-cancer, fashion-mnist"),
        Case(name: "zero threads", arguments: train + ["--threads", "0"], message: "error: invalid --threads 0: need at least 1"),
        Case(name: "unknown mask", arguments: train + ["--mask", "diagonal"],
             message: "Error: The value 'diagonal' is invalid for '--mask <mask>'. Please provide one of 'alternating' and 'checkerboard'.",
             status: 64),
        Case(name: "clip norm 0", arguments: train + ["--clip-norm", "0"], message: "error: invalid --clip-norm 0.0: must be a positive number"),
        Case(name: "ema momentum 1", arguments: train + ["--ema-momentum", "1"], message: "error: invalid --ema-momentum 1.0: must be in (0, 1); 0 turns the average off"),
        Case(name: "validate-every 0", arguments: train + ["--validate-every", "0"], message: "error: invalid --validate-every 0: need at least 1"),
        Case(name: "micro-batch 0", arguments: train + ["--reproducible", "--micro-batch", "0"], message: "error: invalid --micro-batch 0: need at least 1 row"),
        Case(name: "micro-batch without the exact mode", arguments: train + ["--micro-batch", "8"],
             message: "error: --micro-batch applies to the exact mode (--reproducible); the default mode does not split batches"),
        Case(name: "warm-up with the constant schedule", arguments: train + ["--schedule", "constant", "--warmup-steps", "5"],
             message: "error: --warmup-steps applies to --schedule cosine, not constant"),
        Case(name: "a model too large to count", arguments: train + ["--couplings", "1000000", "--hidden", "1000000", "--hidden-layers", "1"],
             message: "error: invalid --hidden: the model (D = 2, 1000000 couplings, 1×1000000 hidden) would have 10000004000000 parameters; at most 2³¹ − 1 (MPI's element counts are 32-bit)"),
        Case(name: "dequantize without levels", arguments: train + ["--dequantize"],
             message: "error: --dequantize needs --levels N (the number of discrete values 0…N−1 of every feature)"),
        Case(name: "one level", arguments: train + ["--dequantize", "--levels", "1"], message: "error: invalid --levels 1: need at least 2 levels"),
        Case(name: "logit alpha out of range", arguments: train + ["--levels", "17", "--logit-alpha", "0.7"],
             message: "error: invalid --logit-alpha 0.7: must be in (0, 0.5)"),
        Case(name: "image shape of another size", arguments: train + ["--image-shape", "3x3"],
             message: "error: invalid --image-shape: 3x3 does not match D = 2 (need H×W = D)"),
        Case(name: "malformed image shape", arguments: train + ["--image-shape", "3"], message: "error: invalid --image-shape '3': use HxW, e.g. 8x8"),
        Case(name: "unknown schedule", arguments: train + ["--schedule", "linear"],
             message: "Error: The value 'linear' is invalid for '--schedule <schedule>'. Please provide one of 'constant' and 'cosine'.",
             status: 64),
        Case(name: "unknown split", arguments: ["evaluate", "--model", "DIR/m.safetensors", "--split", "testing"],
             message: "Error: The value 'testing' is invalid for '--split <split>'. Please provide one of 'train', 'validation', 'all', 'both' or 'test'.",
             status: 64),
        Case(name: "bench with 0 steps", arguments: ["bench", "--steps", "0"], message: "error: invalid --steps 0: need at least 1 step per measurement"),
        Case(name: "bench with 0 threads", arguments: ["bench", "--threads", "1,0"],
             message: "error: invalid --threads '1,0': use a comma-separated list of positive counts, e.g. 1,2"),
        Case(name: "bench with an empty thread count", arguments: ["bench", "--threads", "1,,2"],
             message: "error: invalid --threads '1,,2': use a comma-separated list of positive counts, e.g. 1,2"),
        Case(name: "discrete data outside the levels", files: ["d.csv": "0,1\n2,17\n3,4\n5,6\n7,8\n"],
             arguments: train + ["--data", "DIR/d.csv", "--dequantize", "--levels", "17", "--validation-fraction", "0"],
             message: "error: invalid --levels 17: row 2, column 2 holds 17.0, outside 0…16; discrete data must be integers in 0…levels−1"),
        Case(name: "discrete data that are not integers", files: ["d.csv": "0,1\n2,3\n3,4.5\n5,6\n7,8\n"],
             arguments: train + ["--data", "DIR/d.csv", "--dequantize", "--levels", "17", "--validation-fraction", "0"],
             message: "error: invalid --levels 17: row 3, column 2 holds 4.5, not an integer; discrete data must be integers in 0…levels−1 (drop --dequantize/--levels for continuous data)"),
        Case(name: "sample -n 0", arguments: ["sample", "--model", "DIR/m.safetensors", "-n", "0", "--out", "DIR/s.csv"],
             message: "error: invalid -n 0: need at least 1 sample"),
        Case(name: "sample to a .txt file", arguments: ["sample", "--model", "DIR/m.safetensors", "--out", "DIR/s.txt"],
             message: "error: invalid --out DIR/s.txt: the file name must end in .csv or .npy (or .png for an image model)"),
        Case(name: "missing checkpoint", arguments: ["evaluate", "--model", "DIR/none.safetensors", "--dataset", "moons"],
             message: "error: DIR/none.safetensors: cannot open file: No such file or directory"),
        Case(name: "safetensors that is text", files: ["m.safetensors": "hello, this is not a checkpoint"],
             arguments: ["evaluate", "--model", "DIR/m.safetensors", "--dataset", "moons"],
             message: "error: DIR/m.safetensors: header length 8367736964726416744 exceeds the file size (31 bytes); is this really a safetensors file?"),
    ]

    /// `.npy` and safetensors files that are malformed, written byte by byte, and other cases that need a
    /// trained model (`MODEL`).
    static let fileCases: [Case] = {
        let evaluate = ["evaluate", "--model", "MODEL", "--data"]
        return [
            Case(name: "npy with a wrong magic", arguments: evaluate + ["DIR/magic.npy"],
                 message: "error: DIR/magic.npy: not a NumPy .npy file: expected magic \\x93NUMPY, found 0x93 0x4E 0x55 0x4D 0x50 0x5A"),
            Case(name: "big-endian npy", arguments: evaluate + ["DIR/big.npy"],
                 message: "error: DIR/big.npy: big-endian dtype '>f4' is not supported; save with arr.astype('<f4')"),
            Case(name: "Fortran-order npy", arguments: evaluate + ["DIR/fortran.npy"],
                 message: "error: DIR/fortran.npy: Fortran-ordered (column-major) arrays are not supported; save np.ascontiguousarray(arr) instead"),
            Case(name: "3-D npy", arguments: evaluate + ["DIR/three.npy"],
                 message: "error: DIR/three.npy: expected a 2-D array [rows, columns], found shape (2, 2, 2) (3-D)"),
            Case(name: "object-dtype npy", arguments: evaluate + ["DIR/object.npy"],
                 message: "error: DIR/object.npy: unsupported dtype '|O' (Python objects, a pickled array); expected '<f4' (float32) or '<f8' (float64)"),
            Case(name: "truncated npy", arguments: evaluate + ["DIR/trunc.npy"],
                 message: "error: DIR/trunc.npy: data is truncated: shape (4, 2) of '<f4' needs 32 bytes after the header, the file has 20"),
            Case(name: "evaluate --data with --data-seed", arguments: evaluate + ["DIR/d.csv", "--data-seed", "3"],
                 message: "error: --data-seed applies to synthetic data sets (--dataset), not to --data FILE"),
            Case(name: "evaluate a bundled data set with --noise", arguments: ["evaluate", "--model", "MODEL", "--dataset", "digits", "--noise", "0.1"],
                 message: "error: --noise applies to synthetic data sets, not to the bundled data set digits"),
            Case(name: "safetensors with overlapping offsets", arguments: ["inspect", "--model", "DIR/overlap.safetensors"],
                 message: "error: DIR/overlap.safetensors: tensors 'a' (bytes 0..<8) and 'b' (bytes 4..<12) overlap"),
            Case(name: "safetensors with offsets beyond the data", arguments: ["inspect", "--model", "DIR/range.safetensors"],
                 message: "error: DIR/range.safetensors: tensor 'a': data_offsets [0, 8] end beyond the data buffer (4 bytes)"),
            Case(name: "safetensors with an unknown dtype", arguments: ["inspect", "--model", "DIR/dtype.safetensors"],
                 message: "error: DIR/dtype.safetensors: tensor 'a': unknown dtype 'Q8' (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL)"),
            Case(name: "safetensors whose element count overflows", arguments: ["inspect", "--model", "DIR/overflow.safetensors"],
                 message: "error: DIR/overflow.safetensors: tensor 'a': shape [4294967296, 4294967296] of F32 is too large: its byte size overflows Int"),
        ]
    }()

    /// A `.npy` file: magic, version 1.0, a header dictionary padded to 64 bytes, then `data`.
    static func npy(_ descr: String, fortran: Bool, shape: String, bytes: Int, magic: [UInt8] = Array("\u{93}NUMPY".utf8.dropFirst(0))) -> [UInt8] {
        var header = "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shape), }"
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        let length = UInt16(header.utf8.count)
        return magic + [1, 0, UInt8(length & 0xff), UInt8(length >> 8)] + Array(header.utf8) + [UInt8](repeating: 0, count: bytes)
    }

    /// A safetensors file with the given JSON header and `bytes` zero bytes of data.
    static func safetensors(_ header: String, bytes: Int) -> [UInt8] {
        let h = Array(header.utf8)
        return (0..<8).map { UInt8((UInt64(h.count) >> (8 * UInt64($0))) & 0xff) } + h + [UInt8](repeating: 0, count: bytes)
    }

    @Test("each malformed .npy or safetensors file", arguments: fileCases)
    func badFile(c: Case) throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try Self.trainedModel(dir)
        let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
        let files: [String: [UInt8]] = [
            "magic.npy": Self.npy("<f4", fortran: false, shape: "(2, 2)", bytes: 16, magic: [0x93] + Array("NUMPZ".utf8)),
            "big.npy": Self.npy(">f4", fortran: false, shape: "(2, 2)", bytes: 16, magic: magic),
            "fortran.npy": Self.npy("<f4", fortran: true, shape: "(2, 2)", bytes: 16, magic: magic),
            "three.npy": Self.npy("<f4", fortran: false, shape: "(2, 2, 2)", bytes: 32, magic: magic),
            "object.npy": Self.npy("|O", fortran: false, shape: "(2, 2)", bytes: 32, magic: magic),
            "trunc.npy": Self.npy("<f4", fortran: false, shape: "(4, 2)", bytes: 20, magic: magic),
            "overlap.safetensors": Self.safetensors(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, bytes: 12),
            "range.safetensors": Self.safetensors(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, bytes: 4),
            "dtype.safetensors": Self.safetensors(#"{"a":{"dtype":"Q8","shape":[2],"data_offsets":[0,8]}}"#, bytes: 8),
            "overflow.safetensors": Self.safetensors(#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#, bytes: 8),
        ]
        for (name, bytes) in files { try Data(bytes).write(to: URL(fileURLWithPath: "\(dir)/\(name)")) }
        let r = try Tool.flow(c.arguments.map { $0.replacingOccurrences(of: "MODEL", with: model).replacingOccurrences(of: "DIR", with: dir) })
        #expect(r.status == c.status, "\(c.name): exit \(r.status)\n\(r.output)")
        let expected = c.message.replacingOccurrences(of: "DIR", with: dir)
        #expect(r.stderr.split(separator: "\n").contains { $0 == expected }, "\(c.name): expected\n\(expected)\ngot\n\(r.stderr)")
    }

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

    @Test("a CSV whose first line is 2 GB long (a sparse file) is refused at the line limit, naming the file and line")
    func twoGigabyteLine() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = "\(dir)/huge.csv"
        try "1,".write(toFile: path, atomically: false, encoding: .utf8)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.truncate(atOffset: 2 << 30)  // "1," then 2 GiB of zero bytes, no newline: one 2 GB line
        try handle.close()
        let r = try Tool.flow(["train", "--epochs", "1", "--no-plots", "--quiet", "--out", "\(dir)/out", "--data", path])
        #expect(r.status == 1, "\(r.output)")
        #expect(r.stderr.split(separator: "\n").contains {
            $0 == "error: \(path):1: line is longer than 1048576 bytes (maxLineBytes); is this really a CSV file with one sample per line?"
        }, "\(r.stderr)")
        #expect(!Tool.exists("\(dir)/out"))
    }

    @Test("the memory check names the flag that dominates and prints the values as given; a batch larger than the data is no obstacle")
    func memoryCheck() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // 2.05e9 parameters (under MPI's 2³¹ − 1), 4 bytes each in 5 + 32 copies, and the activations: about 304 GB.
        let big = try Tool.flow(["train", "--samples", "300", "--hidden", "16000", "--hidden-layers", "2", "--couplings", "4",
                                 "--batch-size", "100000000000", "--threads", "32", "--epochs", "1", "--no-plots", "--out", "\(dir)/big"])
        #expect(big.status == 1, "\(big.output)")
        #expect(big.stderr.hasPrefix("error: invalid --hidden 16000: with --couplings 4, --hidden-layers 2, --hidden 16000, --batch-size 100000000000 and 32 threads training needs about 304.2 GB of memory; this machine has "),
                "\(big.stderr)")
        #expect(!Tool.exists("\(dir)/big/model.safetensors"))
        // The batch is capped by the training split (240 rows): a huge --batch-size trains, one step per epoch.
        let whole = try Tool.flow(["train", "--samples", "300", "--hidden", "8", "--hidden-layers", "1", "--couplings", "2",
                                   "--batch-size", "100000000000", "--epochs", "1", "--no-plots", "--quiet", "--out", "\(dir)/whole"])
        #expect(whole.status == 0, "\(whole.output)")
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
        // Output to a full disk (/dev/full): an error, not exit 0 and an empty file.
        for command in [["inspect", "--model", model, "--json"], ["evaluate", "--model", model, "--dataset", "moons", "--json"]] {
            let full = try Tool.run("/bin/sh", ["-c", "exec \"$0\" \"$@\" > /dev/full", Tool.binary] + command)
            #expect(full.status == 1 && full.stderr.hasSuffix("error: cannot write the standard output: No space left on device\n"),
                    "\(command[0]): exit \(full.status): \(full.stderr)")
        }
        // Metadata edited by hand: a value of the wrong type names its field; a value every command trusts (steps per
        // epoch, the split) is checked as train's flags are, not left to crash inspect or evaluate.
        let metadataEdits: [(String, String, String, String, String)] = [
            ("model", "\"couplings\":4", "\"couplings\":2.5", "couplings.safetensors",
             "metadata \"model\" is not a model configuration: couplings: expected a whole number, found 2.5"),
            ("training", "\"batchSize\":64", "\"batchSize\":0", "batch.safetensors",
             "metadata \"training\": invalid --batch-size 0: need at least 1 row per batch"),
            ("training", "\"validationFraction\":0.2", "\"validationFraction\":1.5", "split.safetensors",
             "metadata \"training\": invalid --validation-fraction 1.5: must be in [0, 1)"),
        ]
        for (key, from, to, name, message) in metadataEdits {
            #expect(file.metadata[key]!.contains(from), "\(key): \(file.metadata[key]!)")
            var edited = SafeTensorsWriter()
            edited.metadata = file.metadata
            edited.metadata[key] = file.metadata[key]!.replacingOccurrences(of: from, with: to)
            for name in file.names { let i = try file.info(name); edited.add(name: name, dtype: i.dtype, shape: i.shape, bytes: try file.rawBytes(name)) }
            try edited.write(to: "\(dir)/\(name)")
            for command in [["inspect"], ["evaluate", "--dataset", "moons"], ["sample", "-n", "3", "--out", "\(dir)/s.csv"]] {
                try expectError(command.prefix(1) + ["--model", "\(dir)/\(name)"] + command.dropFirst(), "error: \(dir)/\(name): \(message)")
            }
        }
        // A missing tensor and an extra tensor.
        var missing = SafeTensorsWriter(), extra = SafeTensorsWriter()
        missing.metadata = file.metadata
        extra.metadata = file.metadata
        for name in file.names {
            let i = try file.info(name)
            if name != "couplings.2.t.1.bias" { missing.add(name: name, dtype: i.dtype, shape: i.shape, bytes: try file.rawBytes(name)) }
            extra.add(name: name, dtype: i.dtype, shape: i.shape, bytes: try file.rawBytes(name))
        }
        extra.add(name: "couplings.9.s.0.weight", shape: [2], floats: [0, 0])
        try missing.write(to: "\(dir)/missing.safetensors")
        try extra.write(to: "\(dir)/extra.safetensors")
        let rm = try Tool.flow(["inspect", "--model", "\(dir)/missing.safetensors"])
        #expect(rm.status == 1 && rm.stderr.hasPrefix("error: \(dir)/missing.safetensors: tensor 'couplings.2.t.1.bias' is missing"), "\(rm.stderr)")
        try expectError(["inspect", "--model", "\(dir)/extra.safetensors"],
                        "error: \(dir)/extra.safetensors: unexpected tensor 'couplings.9.s.0.weight' (1 tensor(s) not part of this model: D=2, 4 couplings, 2×16 hidden, alternating masks)")
        // A data file whose width does not match the model.
        try "1,2,3\n4,5,6\n".write(toFile: "\(dir)/three.csv", atomically: true, encoding: .utf8)
        try expectError(["evaluate", "--model", model, "--data", "\(dir)/three.csv"],
                        "error: \(dir)/three.csv: has 3 columns; the model expects D = 2")
        try expectError(["encode", "--model", model, "--data", "\(dir)/three.csv", "--out", "\(dir)/z.csv"],
                        "error: \(dir)/three.csv: has 3 columns; the model expects D = 2")
        #expect(!Tool.exists("\(dir)/z.csv"))
        // --per-class on data without labels.
        try "1,2\n3,4\n5,6\n".write(toFile: "\(dir)/two.csv", atomically: true, encoding: .utf8)
        try expectError(["evaluate", "--model", model, "--data", "\(dir)/two.csv", "--per-class"],
                        "error: --per-class needs labelled data (the bundled digits, wine, breast-cancer; moons, circles or a file's last column for a class-conditional model); \(dir)/two.csv has no labels")
        // Training into an existing run is refused; the good checkpoint stays.
        try expectError(Tool.smallTraining(out: "\(dir)/run", epochs: 1),
                        "error: \(dir)/run: already holds a trained model; use --resume \(dir)/run to continue it, --force to overwrite it, or another --out")
        #expect(Tool.bytes(model) == bytes)
        // Resuming a directory that is not a run.
        try expectError(["train", "--resume", "\(dir)/nothing"],
                        "error: \(dir)/nothing/config.json: cannot read the run's config.json (is \(dir)/nothing a training run directory?)")
        // A hand-edited config.json: the message names the key and the value at fault (Foundation's decoder says
        // "not valid JSON" for a fractional number in a whole-number field); the checkpoint stays.
        let config = "\(dir)/run/config.json"
        let original = try String(contentsOfFile: config, encoding: .utf8)
        let lines = original.split(separator: "\n", omittingEmptySubsequences: false)
        let versionLine = try #require(lines.firstIndex { $0.contains("\"format_version\" : 1,") }) + 1
        let edits: [(String, String, String)] = [
            ("\"checkpoint_every\" : 1,", "\"checkpoint_every\" : 2.5,", "options.checkpoint_every: expected a whole number, found 2.5"),
            ("\"hidden\" : 16,", "\"hidden\" : \"16\",", "training.model.hidden: expected a whole number, found the string \"16\""),
            ("\"couplings\" : 4,", "\"couplings\" : 1e300,", "training.model.couplings: expected a whole number, found 1e+300"),
            ("\"keep_best\" : true,", "\"keep_best\" : 1,", "options.keep_best: expected true or false, found 1"),
            ("\"epochs\" : 1,", "", "training.epochs is missing"),
            ("\"format_version\" : 1,", "\"format_version\" : 1,,", "not valid JSON: invalid value at line \(versionLine), column 24"),
            ("\"batchSize\" : 64,", "\"batchSize\" : 0,", "not a valid run configuration: invalid --batch-size 0: need at least 1 row per batch"),
        ]
        for (from, to, message) in edits + [("\"format_version\" : 1,", "\"format_version\" : 2,", "format_version 2 is not supported (this build reads version 1)")] {
            #expect(original.contains(from), "config.json has no \(from):\n\(original)")
            try original.replacingOccurrences(of: from, with: to).write(toFile: config, atomically: true, encoding: .utf8)
            let expected = message.hasPrefix("format_version") || message.hasPrefix("not a valid") ? message : "not a valid run configuration: " + message
            try expectError(["train", "--resume", "\(dir)/run", "--epochs", "2"], "error: \(config): \(expected)")
            #expect(Tool.bytes(model) == bytes)
        }
        try original.write(toFile: config, atomically: true, encoding: .utf8)
    }
}
