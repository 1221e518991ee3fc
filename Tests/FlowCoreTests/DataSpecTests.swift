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
        let n = Int.max / 16
        #expect(message { try DataSpec(samples: n).load() }
                == "invalid --samples \(n): the points need \(n * 16) bytes (16 per point), more than this machine's memory (\(memory) bytes)")
        #expect(message { try DataSpec(samples: Int.max).load() }
                == "invalid --samples \(Int.max): the points need more than \(Int.max) bytes (16 per point), more than this machine's memory (\(memory) bytes)")
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
}
