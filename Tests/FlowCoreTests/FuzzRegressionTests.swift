import Foundation
import Testing

@testable import FlowCore

/// Inputs that crashed the libFuzzer harnesses in fuzz/ (or, before the fix, made the loader allocate from an
/// untrusted size), each with the exact error it must now produce. See fuzz/README.md.
@Suite struct FuzzRegressionTests {
    /// A small model: 1 coupling, s and t with 1 hidden layer of 2 units (11 tensors).
    static let small = FlowConfiguration(dim: 2, couplings: 1, hidden: 2, hiddenLayers: 1)
    /// The sorted tensor names of a checkpoint of ``small``, as listed by a "missing tensor" error.
    static let smallNames =
        "'couplings.0.mask', 'couplings.0.s.0.bias', 'couplings.0.s.0.weight', 'couplings.0.s.1.bias', 'couplings.0.s.1.weight', "
        + "'couplings.0.t.0.bias', 'couplings.0.t.0.weight', 'couplings.0.t.1.bias', 'couplings.0.t.1.weight', "
        + "'normalizer.mean', 'normalizer.std'"

    /// A valid checkpoint of ``small``, then with fields of its metadata's model JSON replaced by `model` and
    /// tensors replaced by `tensors` (F32, same shape).
    static func checkpoint(model overrides: [String: Any] = [:], tensors replaced: [String: [Float]] = [:]) throws -> [UInt8] {
        let model = try RealNVP<Float>(configuration: small, seed: 1)
        let original = try SafeTensorsFile(bytes: Checkpoint(model: model).serialize(), path: "original")
        let modelJSON = try #require(original.metadata["model"])
        var json = try #require(JSONSerialization.jsonObject(with: Data(modelJSON.utf8)) as? [String: Any])
        for (key, value) in overrides { json[key] = value }
        var writer = SafeTensorsWriter()
        writer.metadata = original.metadata
        writer.metadata["model"] = String(decoding: try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]), as: UTF8.self)
        for name in original.names {
            let info = try original.info(name)
            if let values = replaced[name] {
                writer.add(name: name, shape: info.shape, floats: values)
            } else {
                writer.add(name: name, dtype: info.dtype, shape: info.shape, bytes: try original.rawBytes(name))
            }
        }
        return writer.serialize()
    }

    /// Writes `bytes` to a temporary file and expects `Checkpoint.load` to fail with `PATH: message`.
    static func expectLoadError(_ bytes: [UInt8], _ message: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        try withTemporaryDirectory { dir in
            let path = "\(dir)/c.safetensors"
            try writeFixture(bytes, to: path)
            expectFlowIOError("\(path): \(message)", sourceLocation: sourceLocation) { try Checkpoint.load(path: path) }
        }
    }

    @Test func unmodifiedCheckpointStillLoads() throws {
        try withTemporaryDirectory { dir in
            let path = "\(dir)/c.safetensors"
            let bytes = try Self.checkpoint()
            try writeFixture(bytes, to: path)
            #expect(try Checkpoint.load(path: path).model.configuration == Self.small)
        }
    }

    /// Found by the checkpoint fuzz target: a mask that does not match was printed with `Int(Float)`, which
    /// traps on NaN, ±Inf and values beyond Int ("Float value cannot be converted to Int because the result
    /// would be greater than Int.max", Checkpoint.swift).
    @Test func maskWithNonIntegerValuesIsReportedNotTrapped() throws {
        try Self.expectLoadError(
            Self.checkpoint(tensors: ["couplings.0.mask": [.nan, 1e30]]),
            "tensor 'couplings.0.mask' = [nan, 1e+30] does not match the configuration's mask [0, 1]")
        try Self.expectLoadError(
            Self.checkpoint(tensors: ["couplings.0.mask": [-.infinity, 0.5]]),
            "tensor 'couplings.0.mask' = [-inf, 0.5] does not match the configuration's mask [0, 1]")
        // Integral values read as before.
        try Self.expectLoadError(
            Self.checkpoint(tensors: ["couplings.0.mask": [1, 0]]),
            "tensor 'couplings.0.mask' = [1, 0] does not match the configuration's mask [0, 1]")
    }

    /// `couplings` 10⁹ in the metadata: the loader computed 10⁹ masks and laid out 10⁹ couplings (out of memory)
    /// before noticing that the file holds one. (These configurations are now refused by their parameter count,
    /// before anything is laid out.)
    @Test func hugeCouplingCountFailsOnTheFirstMissingMask() throws {
        try Self.expectLoadError(
            Self.checkpoint(model: ["couplings": 1_000_000_000]),
            "metadata \"model\": invalid --hidden: the model (D = 2, 1000000000 couplings, 1×2 hidden) would have 24000000000 parameters; at most 2³¹ − 1 (MPI's element counts are 32-bit)")
    }

    /// `dim` 10¹²: FlowConfiguration.masks() allocated 10¹² Ints (ASan: allocation-size-too-big).
    @Test func hugeDimensionFailsOnTheNormalizer() throws {
        try Self.expectLoadError(
            Self.checkpoint(model: ["dim": 1_000_000_000_000]),
            "metadata \"model\": invalid --hidden: the model (D = 1000000000000, 1 couplings, 1×2 hidden) would have 10000000000004 parameters; at most 2³¹ − 1 (MPI's element counts are 32-bit)")
    }

    /// `hidden` 3·10⁹: the parameter buffer (~ 1.5·10¹⁰ floats) was allocated before any tensor was checked;
    /// `hidden` 2³² with 2 hidden layers overflowed Int in ParameterLayout (hidden × hidden: a trap).
    @Test func hugeHiddenWidthFailsOnTheFirstWeight() throws {
        try Self.expectLoadError(
            Self.checkpoint(model: ["hidden": 3_000_000_000]),
            "metadata \"model\": invalid --hidden: the model (D = 2, 1 couplings, 1×3000000000 hidden) would have 30000000004 parameters; at most 2³¹ − 1 (MPI's element counts are 32-bit)")
        try Self.expectLoadError(
            Self.checkpoint(model: ["hidden": 4_294_967_296, "hidden_layers": 2]),
            "metadata \"model\": invalid --hidden: the model (D = 2, 1 couplings, 2×4294967296 hidden) would have more parameters than an Int can count; at most 2³¹ − 1 (MPI's element counts are 32-bit)")
    }

    /// `hidden_layers` 10⁹: 2·10⁹ layer slots per coupling were laid out before the missing layer was noticed.
    @Test func hugeLayerCountFailsOnTheFirstMissingLayer() throws {
        try Self.expectLoadError(
            Self.checkpoint(model: ["hidden_layers": 1_000_000_000]),
            "metadata \"model\": invalid --hidden: the model (D = 2, 1 couplings, 1000000000×2 hidden) would have 12000000012 parameters; at most 2³¹ − 1 (MPI's element counts are 32-bit)")
    }

    /// `image_shape` [2³², 2³²]: FlowConfiguration.validate() computed H × W unchecked (arithmetic overflow trap).
    @Test func overflowingImageShapeIsReportedNotTrapped() throws {
        try Self.expectLoadError(
            Self.checkpoint(model: ["image_shape": [4_294_967_296, 4_294_967_296], "mask": "checkerboard"]),
            "metadata \"model\": invalid --image-shape: 4294967296x4294967296 does not match D = 2 (need H×W = D)")
        // A field validate() checks before the image shape is still reported first.
        try Self.expectLoadError(
            Self.checkpoint(model: ["image_shape": [4_294_967_296, 4_294_967_296], "hidden": 0]),
            "metadata \"model\": invalid --hidden 0: need at least 1 hidden unit")
    }
}
