import ArgumentParser
import FlowCore
import FlowDistributed
import Foundation

// OpenBLAS must pick its fast kernels before anything else runs (it may re-execute this process).
OpenBLASSetup.ensureOptimizedKernels()

// What `FlowMPIRun.main()` does, except under mpirun (or srun): there a command-line error goes through the set-up
// agreement (RunContext.agree), as the other ranks' first collective is one: every rank exits with status 1 and rank 0
// prints each distinct message once, naming the ranks when they differ (an MPMD launch, `-np 1 A : -np 1 B`, may give
// one rank a bad flag; the same bad flag on every rank is one message, not N interleaved copies). Help and version
// requests print on rank 0 only.
let command: ParsableCommand
do {
    command = try FlowMPIRun.parseAsRoot()
} catch {
    // `--lr -1`: the parser reads `-1` as a flag and reports a missing value; say how to write it.
    let hint = FlowMPIRun.negativeValueHint(for: error, arguments: Array(CommandLine.arguments.dropFirst()))
    let code = FlowMPIRun.exitCode(for: error)
    if MPICommunicator.launchedByMPI {
        if code != .success, let ctx = try? RunContext() {
            ctx.agree(CommandLineError(message: FlowMPIRun.message(for: error) + (hint.map { "\n" + $0 } ?? "")))
        }
        let env = ProcessInfo.processInfo.environment
        if let rank = env["OMPI_COMM_WORLD_RANK"] ?? env["PMIX_RANK"] ?? env["PMI_RANK"], rank != "0" { exit(code.rawValue) }
    }
    if let hint {
        FileHandle.standardError.write(Data((FlowMPIRun.fullMessage(for: error) + "\n" + hint + "\n").utf8))
        exit(code.rawValue)
    }
    FlowMPIRun.exit(withError: error)
}
var running = command
do {
    try running.run()
} catch {
    FlowMPIRun.exit(withError: error)
}

/// A command-line error under mpirun, as the set-up agreement reports it.
struct CommandLineError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
