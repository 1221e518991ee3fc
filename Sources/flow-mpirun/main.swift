import ArgumentParser
import FlowCore
import Foundation

// OpenBLAS must pick its fast kernels before anything else runs (it may re-execute this process).
OpenBLASSetup.ensureOptimizedKernels()

// What `FlowMPIRun.main()` does, except that under mpirun (or srun) only rank 0 prints a command-line error:
// every rank parses the same arguments, and N copies of one message interleave.
let command: ParsableCommand
do {
    command = try FlowMPIRun.parseAsRoot()
} catch {
    let env = ProcessInfo.processInfo.environment
    if let rank = env["OMPI_COMM_WORLD_RANK"] ?? env["PMIX_RANK"] ?? env["PMI_RANK"], rank != "0" {
        exit(FlowMPIRun.exitCode(for: error).rawValue)
    }
    // `--lr -1`: the parser reads `-1` as a flag and reports a missing value; say how to write it.
    if let hint = FlowMPIRun.negativeValueHint(for: error, arguments: Array(CommandLine.arguments.dropFirst())) {
        FileHandle.standardError.write(Data((FlowMPIRun.fullMessage(for: error) + "\n" + hint + "\n").utf8))
        exit(FlowMPIRun.exitCode(for: error).rawValue)
    }
    FlowMPIRun.exit(withError: error)
}
var running = command
do {
    try running.run()
} catch {
    FlowMPIRun.exit(withError: error)
}
