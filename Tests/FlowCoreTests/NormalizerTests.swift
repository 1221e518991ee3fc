import Foundation
import Testing

@testable import FlowCore

/// `Normalizer.fit`: statistics without overflow, and errors that say what is wrong and where.
@Suite struct NormalizerTests {
    /// Column 1: 1.5 … 150.5; column 2: the same with its last value replaced by `last`.
    func data(last: Double) -> Matrix<Double> {
        var values: [Double] = []
        for i in 0..<150 { values += [1.5 + Double(i), i == 149 ? last : 1.5 + Double(i)] }
        return Matrix(rows: 150, columns: 2, values: values)
    }

    /// The error `body` throws, as text, or nil.
    func message(_ body: () throws -> Any) -> String? {
        do { _ = try body(); return nil } catch { return "\(error)" }
    }

    @Test func standardDeviationDoesNotOverflow() throws {
        // (1e300)² overflows Double: the feature is refitted on scaled values.
        let fitted = try Normalizer<Double>.fit(data(last: 1e300))
        let mean = 1e300 / 150, std = 1e300 * 149.0.squareRoot() / 150  // the small values are negligible
        #expect(abs(fitted.mean[1] / mean - 1) < 1e-12)
        #expect(abs(fitted.std[1] / std - 1) < 1e-12)
        // Ordinary data take the unscaled path.
        #expect(fitted.mean[0] == 76 && fitted.std[0] == (Double(150 * 150 - 1) / 12).squareRoot())
    }

    @Test func standardDeviationBeyondFloat32IsNotCalledConstant() throws {
        #expect(message { try Normalizer<Float>.fit(data(last: 1e300), source: "d.csv") }
                == "d.csv: feature 2 (1-based column): the standard deviation 8.137703743822468e+298 is beyond Float's range (3.4028235e+38); rescale the column")
        // Values up to Double's limit fit (a standard deviation never exceeds the largest magnitude); Inf does not.
        #expect(try Normalizer<Double>.fit(data(last: -.greatestFiniteMagnitude)).std[1].isFinite)
        #expect(message { try Normalizer<Double>.fit(data(last: .infinity)) }
                == "feature 2 (1-based column): the mean or standard deviation is not finite (a value is NaN, ±Inf or near Double's limit)")
    }

    @Test func constantFeatureNamesTheSource() {
        let constant = Matrix<Double>(rows: 3, columns: 2, values: [1, 5, 2, 5, 3, 5])
        let expected = "feature 2 (1-based column) is constant in the training split (std = 0); a density on it is degenerate: drop the column"
        #expect(message { try Normalizer<Float>.fit(constant, source: "--dataset wine") } == "--dataset wine: \(expected)")
        #expect(message { try Normalizer<Float>.fit(constant) } == expected)
    }
}
