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

    init() throws {
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
                _ = try SetupAgreement.exchange(communicator, error.map { .failure($0) } ?? .success([]))
                return
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
