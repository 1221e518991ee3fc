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
/// Every rank asked (`mpirun -np 2 flow-mpirun train --help`): the lowest prints, all exit 0. Some did: they print,
/// and the job ends with status 1 (no job runs), rank 0 naming the ranks that asked.
func printHelpUnderMPI(_ ctx: RunContext, _ printHelp: () -> Void) -> Never {
    var asked: [Bool] = []
    do { _ = try SetupAgreement.exchange(ctx.communicator, .failure(CommandLineError.helpRequested)) } catch let f as SetupFailure {
        asked = f.messages.map { $0 == CommandLineError.helpRequested.message }
    } catch {}
    let all = asked.allSatisfy { $0 }
    if asked.firstIndex(of: true) == ctx.rank || !all {
        printHelp()
        flow_flush_stdout()
    }
    if !all, ctx.isRoot {
        let lines = SetupFailure(messages: asked.map { $0 ? CommandLineError.helpRequested.message : "" }).lines
        for line in lines { FileHandle.standardError.write(Data("error: \(line)\n".utf8)) }
    }
    ctx.finish()
    exit(all ? 0 : 1)
}

let command: ParsableCommand
do {
    command = try FlowMPIRun.parseAsRoot()
} catch {
    // `--lr -1`: the parser reads `-1` as a flag and reports a missing value; say how to write it.
    let hint = FlowMPIRun.negativeValueHint(for: error, arguments: Array(CommandLine.arguments.dropFirst()))
    let code = FlowMPIRun.exitCode(for: error)
    if MPICommunicator.launchedByMPI, let ctx = try? RunContext() {
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
// `--help`, `-h`, `help COMMAND`: the parser returns its help command, which prints.
if MPICommunicator.launchedByMPI, String(describing: type(of: command)) == "HelpCommand", let ctx = try? RunContext() {
    printHelpUnderMPI(ctx) {
        do { try running.run() } catch { print(FlowMPIRun.fullMessage(for: error)) }  // it throws the help as a clean exit
    }
}
do {
    try running.run()
} catch {
    FlowMPIRun.exit(withError: error)
}

/// A command-line error under mpirun, as the set-up agreement reports it.
struct CommandLineError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
    /// A rank's --help or --version, as the other ranks read it.
    static let helpRequested = CommandLineError(message: "--help or --version given on this rank: it printed them, and no job runs")
}
