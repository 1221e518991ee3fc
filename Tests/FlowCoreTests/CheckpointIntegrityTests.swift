import Foundation
import Testing

@testable import FlowCore

/// A checkpoint never holds values that would make the model or its optimiser state unusable.
@Suite("Checkpoint integrity")
struct CheckpointIntegrityTests {
    static func state(for model: RealNVP<Float>) -> TrainingState {
        let n = model.parameters.count
        return TrainingState(parameters: model.parameters, firstMoment: [Float](repeating: 0.01, count: n),
                             secondMoment: [Float](repeating: 1e-4, count: n), optimizerStep: 3, step: 3,
                             normalizer: model.normalizer)
    }

    static func directory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-integrity-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test("write refuses a non-finite parameter or moment, or a negative second moment, and keeps the previous file")
    func writeRefusesNonFinite() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = FlowConfiguration(dim: 2, couplings: 2, hidden: 4, hiddenLayers: 1)
        let model = try RealNVP<Float>(configuration: config, seed: 1)
        let path = "\(dir)/model.safetensors"
        try Checkpoint(model: model, state: Self.state(for: model)).write(to: path)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        let slot = model.network.layout.tensors[1]  // couplings.0.s.0.bias
        var cases: [(String, Checkpoint)] = []
        var bad = model
        bad.parameters[slot.offset + 2] = .nan
        cases.append(("tensor '\(slot.name)' holds nan at element 2", Checkpoint(model: bad, state: Self.state(for: model))))
        var s = Self.state(for: model)
        s.firstMoment[slot.offset] = .infinity
        cases.append(("tensor 'optimizer.exp_avg.\(slot.name)' holds inf at element 0", Checkpoint(model: model, state: s)))
        s = Self.state(for: model)
        s.secondMoment[slot.offset + 1] = -1
        cases.append(("tensor 'optimizer.exp_avg_sq.\(slot.name)' holds -1.0 at element 1", Checkpoint(model: model, state: s)))
        for (expected, checkpoint) in cases {
            let error = #expect(throws: FlowIOError.self) { try checkpoint.write(to: path) }
            #expect(error?.description.contains(expected) == true, "\(String(describing: error))")
            #expect(error?.description.contains("the previous file, if any, is kept") == true)
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == good)
        }
    }

    @Test("checkedBytes(for:into:) gives serialize()'s bytes into a reused array, and on a non-finite value throws and leaves the array as it was")
    func checkedBytesIntoReusedStorage() throws {
        let config = FlowConfiguration(dim: 2, couplings: 2, hidden: 4, hiddenLayers: 1)
        let model = try RealNVP<Float>(configuration: config, seed: 1)
        let checkpoint = Checkpoint(model: model, state: Self.state(for: model), metadata: ["data": "moons"])
        var bytes: [UInt8] = [9, 9]
        try checkpoint.checkedBytes(for: "run/model.safetensors", into: &bytes)
        #expect(bytes == checkpoint.serialize())
        #expect(try bytes == checkpoint.checkedBytes(for: "run/model.safetensors"))
        let before = bytes
        var bad = model
        bad.parameters[5] = .infinity
        let error = #expect(throws: FlowIOError.self) {
            try Checkpoint(model: bad, state: Self.state(for: model)).checkedBytes(for: "run/model.safetensors", into: &bytes)
        }
        #expect(error?.path == "run/model.safetensors")
        #expect(bytes == before)
    }

    @Test("the vectorised scan finds the first refused value wherever it is (16-lane blocks and the tail)")
    func firstRefusedMatchesAScalarScan() {
        for count in [0, 1, 15, 16, 17, 40, 1000] {
            for position in Set([0, 1, 14, 15, 16, 17, count / 2, count - 1]) where position >= 0 && position < count {
                for bad: Float in [.nan, .infinity, -.infinity, -1, -0.0, .leastNonzeroMagnitude, -.leastNonzeroMagnitude] {
                    var values = (0..<count).map { Float($0 % 7) * 0.5 }
                    values[position] = bad
                    if position + 3 < count { values[position + 3] = .nan }  // a later one must not be reported
                    for nonNegative in [false, true] {
                        let expected = values.firstIndex { !$0.isFinite || nonNegative && $0 < 0 }
                        #expect(Checkpoint.firstRefused(values, nonNegative: nonNegative) == expected,
                                "count \(count), \(bad) at \(position), nonNegative \(nonNegative)")
                    }
                }
            }
        }
    }

    @Test("load refuses non-finite or negative Adam moments, naming the tensor")
    func loadRefusesBadMoments() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = FlowConfiguration(dim: 2, couplings: 2, hidden: 4, hiddenLayers: 1)
        let model = try RealNVP<Float>(configuration: config, seed: 1)
        let slot = model.network.layout.tensors[0]
        for (moment, value, message) in [("exp_avg", Float.nan, "has a non-finite value at element 0"),
                                          ("exp_avg_sq", Float(-2), "has a negative value at element 0 (a second moment is ≥ 0)")] {
            // Written through the raw writer (Checkpoint.write would refuse it), with the checkpoint's own layout.
            let good = Checkpoint(model: model, state: Self.state(for: model)).serialize()
            let file = try SafeTensorsFile(bytes: good, path: "good")
            var w = SafeTensorsWriter()
            w.metadata = file.metadata
            for name in file.tensors.keys.sorted() {
                let info = try file.info(name)
                switch info.dtype {
                case .F32:
                    var v = try file.floats(name)
                    if name == "optimizer.\(moment).\(slot.name)" { v[0] = value }
                    w.add(name: name, shape: info.shape, floats: v)
                case .F64: w.add(name: name, shape: info.shape, doubles: try file.doubles(name))
                default: w.add(name: name, shape: info.shape, int64s: try file.int64s(name))
                }
            }
            let path = "\(dir)/\(moment).safetensors"
            try Data(w.serialize()).write(to: URL(fileURLWithPath: path))
            let error = #expect(throws: FlowIOError.self) { try Checkpoint.load(path: path) }
            #expect(error?.description == "\(path): tensor 'optimizer.\(moment).\(slot.name)' \(message)", "\(String(describing: error))")
        }
    }
}
