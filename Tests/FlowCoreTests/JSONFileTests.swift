import Foundation
import Testing

@testable import FlowCore

/// `JSONFile.decode`: a hand-edited JSON file's error names the key path and the value at fault.
@Suite struct JSONFileTests {
    struct Inner: Codable { var steps: [Int]; var rate: Double }
    struct Outer: Codable { var name: String; var count: Int; var flag: Bool; var inner: Inner; var seed: UInt64?; var shift: Double? }

    /// The message for `json`, or nil when it decodes.
    func message(_ json: String) -> String? {
        do { _ = try JSONFile.decode(Outer.self, from: Data(json.utf8), path: "c.json"); return nil } catch { return "\(error)" }
    }

    @Test func namesTheKeyPathAndTheValue() {
        let good = #"{"name": "a", "count": 3, "flag": true, "inner": {"steps": [1, 2, 3], "rate": 0.5}}"#
        #expect(message(good) == nil)
        #expect(message(good.replacingOccurrences(of: "\"count\": 3", with: "\"count\": 3.5"))
                == "c.json: count: expected a whole number, found 3.5")
        // In an array, after a fractional Double that is valid where it is.
        #expect(message(good.replacingOccurrences(of: "[1, 2, 3]", with: "[1, 2.25, 3]"))
                == "c.json: inner.steps[1]: expected a whole number, found 2.25")
        #expect(message(good.replacingOccurrences(of: "\"count\": 3", with: "\"count\": \"3\""))
                == "c.json: count: expected a whole number, found the string \"3\"")
        #expect(message(good.replacingOccurrences(of: "\"flag\": true", with: "\"flag\": 0"))
                == "c.json: flag: expected true or false, found 0")
        #expect(message(good.replacingOccurrences(of: "\"rate\": 0.5", with: "\"rate\": true"))
                == "c.json: inner.rate: expected a number, found true")
        #expect(message(good.replacingOccurrences(of: "\"name\": \"a\", ", with: "")) == "c.json: name is missing")
        #expect(message(good.replacingOccurrences(of: "\"name\": \"a\"", with: "\"name\": null"))
                == "c.json: name: expected a string, found null")
        // A negative value for an unsigned field, after a negative Double that is valid where it is.
        let unsigned = good.replacingOccurrences(of: "\"flag\": true", with: "\"flag\": true, \"shift\": -2, \"seed\": -1")
        #expect(message(unsigned) == "c.json: seed: expected a whole number ≥ 0, found -1")
        #expect(message("[1]") == "c.json: the top level: expected an object, found an array")
        #expect(message("{\n  \"name\": \"a\",,\n}") == "c.json: not valid JSON: invalid value at line 2, column 15")
        #expect(message("")?.hasPrefix("c.json: not valid JSON: ") == true)
    }
}
