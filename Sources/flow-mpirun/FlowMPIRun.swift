import ArgumentParser

/// `flow-mpirun`: train, evaluate and sample RealNVP normalizing flows on one process, on every core of a
/// machine, or across machines with `mpirun -np N flow-mpirun …`.
struct FlowMPIRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flow-mpirun",
        abstract: "RealNVP normalizing flows: data-parallel training on threads and MPI ranks.",
        discussion: """
            Run any subcommand directly (one process, all cores) or under MPI, e.g.
              mpirun -np 2 flow-mpirun train --out runs/moons
            Forward means data → latent. Log-likelihoods are in nats; bits/dim = NLL / (D·ln 2).
            """,
        version: "0.1.0",
        subcommands: [TrainCommand.self, SampleCommand.self, EvaluateCommand.self, EncodeCommand.self,
                      DecodeCommand.self, InspectCommand.self, BenchCommand.self])
}
