import Foundation
import Testing

@testable import FlowCore

/// Runs `body` with a fresh empty directory (under the system temporary directory) and removes it afterwards.
@discardableResult
func withTemporaryDirectory<R>(_ body: (String) throws -> R) throws -> R {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("flowcore-io-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url.path)
}

/// Writes `bytes` to `path` directly (not atomically), for fixtures.
func writeFixture(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// Reads a file's bytes.
func readFixture(_ path: String) throws -> [UInt8] {
    Array(try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// Expects `body` to throw a ``FlowIOError`` and returns it (recording an issue when it does not throw one).
func captureFlowIOError<T>(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> T) -> FlowIOError? {
    do {
        let value = try body()
        Issue.record("expected a FlowIOError, but got a value: \(value)", sourceLocation: sourceLocation)
    } catch let error as FlowIOError {
        return error
    } catch {
        Issue.record("expected a FlowIOError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// Expects `body` to throw a ``FlowIOError`` whose description is exactly `expected`; returns the error.
@discardableResult
func expectFlowIOError<T>(
    _ expected: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> T
) -> FlowIOError? {
    do {
        let value = try body()
        Issue.record("expected the error \(expected), but got a value: \(value)", sourceLocation: sourceLocation)
        return nil
    } catch let error as FlowIOError {
        #expect(error.description == expected, sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected a FlowIOError \(expected), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// The bytes of `text` as UTF-8.
func utf8(_ text: String) -> [UInt8] { Array(text.utf8) }

/// The bytes of a hex string such as "00ff3f".
func hexBytes(_ hex: String) -> [UInt8] {
    let digits = Array(hex.utf8)
    return stride(from: 0, to: digits.count - 1, by: 2).map { index in
        UInt8(String(decoding: digits[index...index + 1], as: UTF8.self), radix: 16) ?? 0
    }
}

/// Access to a `python3` with numpy and safetensors, for compatibility tests.
enum Python {
    /// Whether `python3 -c "import numpy, safetensors.numpy"` succeeds.
    static let hasSafetensors: Bool = (try? run("import numpy, safetensors.numpy").status) == 0

    /// Runs `python3 -c script args...` and returns its exit status, standard output and standard error.
    static func run(_ script: String, _ arguments: [String] = []) throws -> (status: Int32, output: String, error: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script] + arguments
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outputData, as: UTF8.self), String(decoding: errorData, as: UTF8.self))
    }

    /// Runs a script that must succeed and returns its standard output.
    static func check(_ script: String, _ arguments: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let result = try run(script, arguments)
        #expect(result.status == 0, "python failed: \(result.error)", sourceLocation: sourceLocation)
        return result.output
    }
}
