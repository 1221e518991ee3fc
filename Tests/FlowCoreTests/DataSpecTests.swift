import Foundation
import Testing

@testable import FlowCore

/// `DataSpec`: the checks on synthetic data sets' sizes and noise.
@Suite struct DataSpecTests {
    /// The error `body` throws, as text, or nil.
    func message(_ body: () throws -> Any) -> String? {
        do { _ = try body(); return nil } catch { return "\(error)" }
    }

    @Test func noiseMustBeFiniteAndNonNegative() {
        #expect(message { try DataSpec(noise: -1).load() } == "invalid --noise -1.0: must be a finite number ≥ 0")
        #expect(message { try DataSpec(noise: .infinity).load() } == "invalid --noise inf: must be a finite number ≥ 0")
        #expect(message { try DataSpec(noise: .nan).load() } == "invalid --noise nan: must be a finite number ≥ 0")
    }

    @Test func pointsBeyondFloat32RangeAreRefused() throws {
        let moons = message { try DataSpec(samples: 100, noise: 1e300).load() }
        #expect(moons?.hasPrefix("invalid --noise 1e+300: the generated moons point 1 has a coordinate of ") == true, "\(moons ?? "no error")")
        #expect(moons?.hasSuffix(", outside the Float32 range (±3.4e38); use a smaller noise") == true, "\(moons ?? "no error")")
        // pinwheel's exp(noise · g) overflows to NaN angles.
        #expect(message { try DataSpec(dataset: "pinwheel", samples: 100, noise: 1000).load() }
                == "invalid --noise 1000.0: the generated pinwheel point 8 has a NaN coordinate; use a smaller noise")
        #expect(try DataSpec(samples: 100, noise: 1e30).load().rows == 100)
    }

    @Test func samplesBeyondPhysicalMemoryAreRefused() {
        let memory = MachineMemory.physicalBytes
        #expect(memory > 1 << 20 && memory < Int.max)
        let n = Int.max / 64
        #expect(message { try DataSpec(samples: n).load() }
                == "invalid --samples \(n): the points and their working copies need \(n * 64) bytes (64 per point), more than this machine's memory (\(memory) bytes)")
        #expect(message { try DataSpec(samples: Int.max).load() }
                == "invalid --samples \(Int.max): the points and their working copies need more than \(Int.max) bytes (64 per point), more than this machine's memory (\(memory) bytes)")
        // Just above memory at 64 bytes a point, though the points alone (16 bytes each) would fit.
        let above = Int(memory / 64) + 1
        #expect(message { try DataSpec(samples: above).load() }?.hasPrefix("invalid --samples \(above): the points and their working copies need ") == true)
        #expect(message { try DataSpec(samples: 1).load() } == "invalid --samples 1: need at least 2 points")
    }

    @Test func encodesSamplesAndNoiseOnlyForSyntheticSets() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        func json(_ spec: DataSpec) throws -> String { String(decoding: try encoder.encode(spec), as: UTF8.self) }
        let file = DataSpec(dataset: nil, file: "d.csv", seed: 5)
        let wine = DataSpec(dataset: "wine", seed: 5)
        let moons = DataSpec(dataset: "moons", samples: 200, noise: 0.1, seed: 5)
        #expect(try json(file) == #"{"file":"d.csv","seed":5}"#)
        #expect(try json(wine) == #"{"dataset":"wine","seed":5}"#)
        #expect(try json(moons) == #"{"dataset":"moons","noise":0.1,"samples":200,"seed":5}"#)
        for spec in [file, wine, moons] {
            #expect(try JSONDecoder().decode(DataSpec.self, from: encoder.encode(spec)) == spec)
        }
        // A config.json written before samples were left out for files still reads.
        let old = try JSONDecoder().decode(DataSpec.self, from: Data(#"{"file":"d.csv","samples":300,"seed":5}"#.utf8))
        #expect(old.file == "d.csv" && old.samples == 300)
    }

    @Test("--condition class on moons: one-hot context after x; label 0 is the upper moon; the noise does not move labels")
    func moonsClassConditioning() throws {
        let rows = try DataSpec(samples: 400, seed: 3, condition: .classLabel).loadRows()
        #expect(rows.features == 2 && rows.contextFeatures == 2 && rows.classes == 2)
        #expect(rows.x.values == (try DataSpec(samples: 400, seed: 3).load()).values)
        let labels = try #require(rows.labels)
        for i in 0..<400 {
            #expect(rows.context.row(i) == (labels[i] == 0 ? [1, 0] : [0, 1]))
        }
        // The upper moon (label 0) is centred at y ≈ 2/π ≈ 0.64, the lower at 0.5 − 2/π ≈ −0.14.
        func meanY(_ k: Int) -> Double {
            let ys = (0..<400).filter { labels[$0] == k }.map { rows.x[$0, 1] }
            return ys.reduce(0, +) / Double(ys.count)
        }
        #expect(abs(meanY(0) - 2 / Double.pi) < 0.05 && abs(meanY(1) - (0.5 - 2 / Double.pi)) < 0.05)
        #expect(labels.filter { $0 == 0 }.count == 200)
        #expect(try DataSpec(samples: 400, noise: 0.2, seed: 3, condition: .classLabel).loadRows().labels == labels)
        #expect(message { try DataSpec(dataset: "pinwheel", condition: .classLabel).loadRows() }?.contains("has no class labels") == true)
    }

    @Test("--context-columns K: the last K columns of a file are c; too few columns and bad class columns are refused")
    func fileConditioning() throws {
        try withTemporaryDirectory { dir in
            let path = "\(dir)/d.csv"
            try "a,b,c,k\n1,2,3,0\n4,5,6,1\n7,8,9,2\n".write(toFile: path, atomically: true, encoding: .utf8)
            let two = try DataSpec(dataset: nil, file: path, condition: .columns(2)).loadRows()
            #expect(two.features == 2 && two.x.values == [1, 2, 4, 5, 7, 8] && two.context.values == [3, 0, 6, 1, 9, 2])
            #expect(message { try DataSpec(dataset: nil, file: path, condition: .columns(3)).loadRows() }
                    == "invalid --context-columns 3: \(path) has 4 columns; need at least 5 (D ≥ 2 features, then the 3 context columns)")
            let byClass = try DataSpec(dataset: nil, file: path, condition: .classLabel).loadRows()
            #expect(byClass.features == 3 && byClass.classes == 3 && byClass.labels == [0, 1, 2])
            #expect(byClass.rows.row(1) == [4, 5, 6, 0, 1, 0])
            let bad = "\(dir)/bad.csv"
            try "1,2,3,0\n4,5,6,1.5\n".write(toFile: bad, atomically: true, encoding: .utf8)
            #expect(message { try DataSpec(dataset: nil, file: bad, condition: .classLabel).loadRows() }
                    == "invalid --condition class: \(bad): row 2, column 4 holds 1.5; the last column must hold the class as an integer 0, 1, 2, …")
        }
    }

    @Test("the spec's JSON: no condition keys without a condition; each condition round-trips")
    func conditionJSON() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        #expect(String(decoding: try encoder.encode(DataSpec()), as: UTF8.self) == #"{"dataset":"moons","samples":3000,"seed":0}"#)
        for condition in [Conditioning.classLabel, .columns(3)] {
            let spec = DataSpec(dataset: nil, file: "x.csv", condition: condition)
            #expect(try JSONDecoder().decode(DataSpec.self, from: encoder.encode(spec)) == spec)
        }
        #expect(String(decoding: try encoder.encode(DataSpec(condition: .classLabel)), as: UTF8.self).contains(#""condition":"class""#))
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(DataSpec.self, from: Data(#"{"seed":0,"condition":"colour"}"#.utf8)) }
    }
}
