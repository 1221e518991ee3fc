import ArgumentParser
import CFlowSupport
import FlowCore
import FlowDistributed
import Foundation

// OpenBLAS must pick its fast kernels before anything else runs (it may re-execute this process).
OpenBLASSetup.ensureOptimizedKernels()

// What `FlowMPIRun.main()` does, except under mpirun (or srun): there a command-line error goes through the set-up
// agreement (RunContext.agree), as the other ranks' first collective is one: every rank exits with status 1 and rank 0
// prints each distinct message once, naming the ranks when they differ (an MPMD launch, `-np 1 A : -np 1 B`, may give
// one rank a bad flag; the same bad flag on every rank is one message, not N interleaved copies). Help and version
// requests print once (printHelpUnderMPI).

/// Under mpirun, a rank that only prints help or the version joins the set-up agreement the other ranks wait in.
/// Every rank asked the same (`mpirun -np 2 flow-mpirun train --help`): the lowest prints, all exit 0. Otherwise the
/// ranks that asked print, rank 0 lists every rank's message (another rank's error included), and all exit 1.
func printHelpUnderMPI(_ ctx: RunContext, _ printHelp: () -> Void) -> Never {
    // The request, with its arguments: `train --help` and `sample --help` (or --version) are different requests.
    let request = CommandLineError(message: "asked for help or the version (\((["flow-mpirun"] + CommandLine.arguments.dropFirst()).joined(separator: " "))): printed on this rank, and no job runs")
    var messages: [String] = []
    do { _ = try SetupAgreement.exchange(ctx.communicator, .failure(request)) } catch let f as SetupFailure {
        messages = f.messages
    } catch {}
    let same = !messages.isEmpty && messages.allSatisfy { $0 == request.message }
    if !same || ctx.rank == 0 {
        printHelp()
        flow_flush_stdout()
    }
    if !same { ctx.report(SetupFailure(messages: messages)) }
    ctx.finish()
    exit(same ? 0 : 1)
}

let command: ParsableCommand
do {
    // `flow-mpirun trian --epochs 5`: the parser would report "Unknown option '--epochs'"; name the subcommand.
    if let typo = FlowMPIRun.unknownSubcommand(in: Array(CommandLine.arguments.dropFirst())) { throw typo }
    command = try FlowMPIRun.parseAsRoot()
} catch {
    // `--lr -1`: the parser reads `-1` as a flag and reports a missing value; say how to write it.
    let hint = FlowMPIRun.negativeValueHint(for: error, arguments: Array(CommandLine.arguments.dropFirst()))
    let code = FlowMPIRun.exitCode(for: error)
    if MPICommunicator.launchedByMPI, let ctx = try? RunContext(parsed: false) {
        if code != .success {
            ctx.agree(CommandLineError(message: FlowMPIRun.message(for: error) + (hint.map { "\n" + $0 } ?? "")))
        }
        printHelpUnderMPI(ctx) { print(FlowMPIRun.fullMessage(for: error)) }  // --version
    }
    if let hint {
        FileHandle.standardError.write(Data((FlowMPIRun.fullMessage(for: error) + "\n" + hint + "\n").utf8))
        exit(code.rawValue)
    }
    FlowMPIRun.exit(withError: error)
}
var running = command
// `--help`, `-h`, `help COMMAND`: the parser returns its help command, which prints; no subcommand: the root, which
// prints its help too.
if MPICommunicator.launchedByMPI, String(describing: type(of: command)) == "HelpCommand" || command is FlowMPIRun, let ctx = try? RunContext(parsed: false) {
    printHelpUnderMPI(ctx) {
        do { try running.run() } catch { print(FlowMPIRun.fullMessage(for: error)) }  // it throws the help as a clean exit
    }
}
do {
    try running.run()
} catch {
    FlowMPIRun.exit(withError: error)
}
// What the command printed (`evaluate --json > out.json`) must have reached its file: a full disk is an error.
let stdoutError = flow_stdout_write_error()
if stdoutError != 0 {
    let reason = stdoutError > 0 ? String(cString: strerror(stdoutError)) : "a write failed"
    FileHandle.standardError.write(Data("error: cannot write the standard output: \(reason)\n".utf8))
    exit(1)
}

/// A command-line error under mpirun, as the set-up agreement reports it.
struct CommandLineError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
