import CFlowSupport
import FlowCore
import FlowDistributed
import Foundation
import Logging

/// The job a subcommand runs in: its communicator (MPI under `mpirun`, else a single process), its
/// logger, and the error policy.
///
/// Errors in the set-up phase (flags, files) are agreed on by all ranks with ``agree(_:)``, so that each
/// exits with status 1 and one clear message; errors later end the whole job at once (`MPI_Abort`).
final class RunContext {
    let communicator: any Communicator
    let logger: Logger
    private let mpi: MPICommunicator?

    var rank: Int { communicator.rank }
    var worldSize: Int { communicator.worldSize }
    var isRoot: Bool { communicator.rank == 0 }
    /// What every rank's set-up must agree on under mpirun, compared at the set-up agreement (``agree(_:)``) when any
    /// is given: the values a command's collectives and output depend on (`sample n=6 seed=1 …`) and fingerprints of
    /// what it read (`model 5f3a…`, `data 91c0…`), whose paths may be spelt per host. A command that compares its
    /// command line instead (`bench`: ``comparable(_:maskThreads:)``) shares that. `train` compares its resolved
    /// configuration and data itself (``TrainingRun``), and shares nothing here.
    var sharedContent: [String] = []

    /// The job's context. Under mpirun every rank first agrees on the subcommand (the first collective of every
    /// command): ranks that run different ones (an MPMD launch `-np 1 train … : -np 1 inspect …`) would pair one
    /// command's collectives with another's and wait forever, so they all exit with status 1 and rank 0 names them.
    /// - Parameter parsed: false on the paths that only report a parse error or print help (main.swift): those are
    ///   agreed on by their own messages, so the subcommands are then not compared.
    init(parsed: Bool = true, arguments: [String] = Array(CommandLine.arguments.dropFirst())) throws {
        // The tool owns its main thread: flush subnormals there too (workers set it per task).
        FloatEnvironment.enableFlushToZero()
        if MPICommunicator.launchedByMPI {
            let m = try MPICommunicator()
            mpi = m
            communicator = m
        } else {
            mpi = nil
            communicator = SingleProcessCommunicator()
        }
        RunContext.bootstrapLogging(rank: communicator.rank, worldSize: communicator.worldSize)
        var log = Logger(label: "flow-mpirun")
        log.logLevel = ProcessInfo.processInfo.environment["FLOW_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        logger = log
        if communicator.worldSize > 1 { agreeOnSubcommand(arguments.first { !$0.hasPrefix("-") } ?? "", parsed: parsed) }
    }

    /// `arguments` with `--flag=value` written `--flag value`, and the values every rank may spell its own way
    /// replaced by `…`: file paths (and `--threads` when `maskThreads`).
    static func comparable(_ arguments: [String], maskThreads: Bool = true) -> [String] {
        var perRank: Set<String> = ["--data", "--model", "--out", "--context", "--resume", "--report", "--train-out",
                                    "--json", "--csv", "--svg", "--markdown"]
        if maskThreads { perRank.insert("--threads") }
        let split = arguments.flatMap { argument -> [String] in
            guard argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") else { return [argument] }
            return [String(argument[..<equals]), String(argument[argument.index(after: equals)...])]
        }
        var result: [String] = [], maskNext = false
        for argument in split {
            result.append(maskNext && !argument.hasPrefix("-") ? "…" : argument)
            maskNext = perRank.contains(argument)
        }
        return result
    }

    /// The first collective of every command under mpirun: all ranks run the same subcommand, or all exit with 1.
    private func agreeOnSubcommand(_ name: String, parsed: Bool) {
        let all: [[UInt8]]
        do {
            all = try SetupAgreement.exchange(communicator, .success([parsed ? 1 : 0] + Array(name.utf8)))
        } catch {
            communicator.abort(message: "could not agree on the subcommand: \(error)", code: 1)
        }
        guard all.allSatisfy({ $0.first == 1 }) else { return }
        let names = all.map { String(decoding: $0.dropFirst(), as: UTF8.self) }
        guard Set(names).count > 1 else { return }
        let list = names.enumerated().map { "rank \($0.offset): \($0.element.isEmpty ? "none" : $0.element)" }.joined(separator: ", ")
        let message = "the ranks run different subcommands (\(list)): every rank of a job must run the same command"
        report(SetupFailure(messages: [String](repeating: message, count: names.count)))
        finish()
        exit(1)
    }

    static func bootstrapLogging(rank: Int, worldSize: Int) {
        LoggingSystem.bootstrap { label in RankLogHandler(label: label, rank: rank, worldSize: worldSize) }
    }

    /// Prints `text` on rank 0's standard output.
    func say(_ text: String) {
        guard isRoot else { return }
        print(text)
        flow_flush_stdout()
    }

    /// Set-up agreement: when any rank has an error, every rank exits with status 1; rank 0 prints the
    /// distinct messages (naming the ranks when they differ). Collective (``SetupAgreement``), except for a
    /// ``SetupFailure``, which every rank already knows.
    func agree(_ error: Error?) {
        let failure: SetupFailure
        if let known = error as? SetupFailure {
            failure = known
        } else if worldSize == 1 {
            guard let error else { return }
            failure = SetupFailure(messages: [RunContext.message(of: error)])
        } else {
            do {
                let shared = sharedContent.isEmpty ? [0] : [1] + Array(sharedContent.joined(separator: "\u{0}").utf8)
                let all = try SetupAgreement.exchange(communicator, error.map { .failure($0) } ?? .success(shared))
                // Every rank ready: the same settings and inputs, whatever paths and thread counts each rank gave.
                guard all.allSatisfy({ $0.first == 1 }), Set(all).count > 1 else { return }
                let lines = all.map { "`" + String(decoding: $0.dropFirst(), as: UTF8.self).replacingOccurrences(of: "\u{0}", with: "; ") + "`" }
                let message = "the ranks run different commands (rank 0: \(lines[0]); "
                    + lines.indices.dropFirst().filter { lines[$0] != lines[0] }.map { "rank \($0): \(lines[$0])" }.joined(separator: "; ")
                    + "): every rank of a job must run the same command on the same model and data (file paths and --threads may differ)"
                failure = SetupFailure(messages: [String](repeating: message, count: all.count))
            } catch let gathered as SetupFailure {
                failure = gathered
            } catch {
                communicator.abort(message: "could not agree on set-up: \(error)", code: 1)
            }
        }
        report(failure)
        finish()
        exit(1)
    }

    /// Prints each distinct message of `failure` on rank 0's standard error, `error: rank 1: …`.
    func report(_ failure: SetupFailure) {
        guard isRoot else { return }
        for line in failure.lines { FileHandle.standardError.write(Data("error: \(line)\n".utf8)) }
    }

    /// Runs `body` in the set-up phase: an error there goes through ``agree(_:)``.
    func setUp<T>(_ body: () throws -> T) -> T {
        do {
            let value = try body()
            agree(nil)
            return value
        } catch {
            agree(error)
            fatalError("unreachable")
        }
    }

    /// Ends the job because of `error` after set-up: every rank stops now with status `code`.
    func fail(_ error: Error, code: Int32 = 1) -> Never {
        let text = RunContext.message(of: error)
        if worldSize == 1 {
            FileHandle.standardError.write(Data("error: \(text)\n".utf8))
            exit(code)
        }
        communicator.abort(message: text, code: code)
    }

    /// Finalises MPI (when used).
    func finish() { mpi?.finalize() }

    /// The text of an error: our error types' descriptions name the file, flag or tensor.
    static func message(of error: Error) -> String { String(describing: error) }
}

/// Log lines on standard error, prefixed with the rank when the job has several: `[rank 1/2] message`.
struct RankLogHandler: LogHandler {
    let label: String
    let rank: Int
    let worldSize: Int
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let prefix = worldSize > 1 ? "[rank \(rank)/\(worldSize)] " : ""
        let level = event.level >= .warning ? "\(event.level): " : ""
        FileHandle.standardError.write(Data("\(prefix)\(level)\(event.message)\n".utf8))
    }
}
