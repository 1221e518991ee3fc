import Foundation
import Testing

/// Runs the built `flow-mpirun` (and `mpirun`) as a user would, capturing output and exit status.
enum Tool {
    /// The directory holding the built products (next to this test bundle), or `FLOW_MPIRUN_BIN_DIR`.
    static var productsDirectory: URL {
        if let dir = ProcessInfo.processInfo.environment["FLOW_MPIRUN_BIN_DIR"] { return URL(fileURLWithPath: dir) }
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("flow-mpirun").path) { return url }
            url = url.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    }

    static var binary: String { productsDirectory.appendingPathComponent("flow-mpirun").path }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var seconds: Double
        var output: String { stdout + stderr }
    }

    /// Runs `executable` with `arguments`; kills it after `timeout` seconds (status then reads 137/SIGKILL).
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                    timeout: Double = 300, currentDirectory: String? = nil) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        if let currentDirectory { p.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let outData = LockedData(), errData = LockedData()
        out.fileHandleForReading.readabilityHandler = { outData.append($0.availableData) }
        err.fileHandleForReading.readabilityHandler = { errData.append($0.availableData) }
        let start = Date()
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        out.fileHandleForReading.readabilityHandler = nil
        err.fileHandleForReading.readabilityHandler = nil
        outData.append(out.fileHandleForReading.readDataToEndOfFile())
        errData.append(err.fileHandleForReading.readDataToEndOfFile())
        return Result(status: p.terminationStatus, stdout: outData.string, stderr: errData.string,
                      seconds: Date().timeIntervalSince(start))
    }

    /// `flow-mpirun` with `arguments`.
    @discardableResult
    static func flow(_ arguments: [String], environment: [String: String] = [:], timeout: Double = 300) throws -> Result {
        try run(binary, arguments, environment: environment, timeout: timeout)
    }

    /// A fresh temporary directory, removed by the caller with `cleanUp`.
    static func temporaryDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flow-tool-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func bytes(_ path: String) -> [UInt8]? { FileManager.default.contents(atPath: path).map(Array.init) }
    static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    /// Arguments of a small, fast training run.
    static func smallTraining(out: String, epochs: Int = 3, extra: [String] = []) -> [String] {
        ["train", "--samples", "300", "--epochs", String(epochs), "--hidden", "16", "--hidden-layers", "2", "--couplings", "4",
         "--batch-size", "64", "--lr", "1e-3", "--out", out, "--no-plots", "--quiet", "--checkpoint-every", "1"] + extra
    }
}

final class LockedData: @unchecked Sendable {
    private var data = Data()
    private let lock = NSLock()
    func append(_ d: Data) { lock.lock(); data.append(d); lock.unlock() }
    var string: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }
}
