import ArgumentParser
import Foundation

/// `flow-mpirun`: train, evaluate and sample RealNVP normalizing flows on one process, on every core of a
/// machine, or across machines with `mpirun -np N flow-mpirun …`.
struct FlowMPIRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flow-mpirun",
        abstract: "RealNVP normalizing flows: data-parallel training on threads and MPI ranks.",
        discussion: """
            Run any subcommand directly (one process, all cores) or under MPI, e.g.
              mpirun -np 2 --bind-to none flow-mpirun train --out runs/moons
            (as root add --allow-run-as-root; cluster/launch.sh -n 2 train … sets these and
            passes a first SIGTERM/SIGINT on as a graceful stop, see docs/stopping.md).
            Forward means data → latent. Log-likelihoods are in nats; bits/dim = NLL / (D·ln 2).
            """,
        version: "0.1.0",
        subcommands: [TrainCommand.self, SampleCommand.self, EvaluateCommand.self, EncodeCommand.self,
                      DecodeCommand.self, InspectCommand.self, BenchCommand.self])
}

extension FlowMPIRun {
    /// For a parse error "Missing value for '--lr <lr>'" whose flag is followed on the command line by a
    /// negative number (`--lr -1`: the parser takes `-1` for a flag), the line
    /// "hint: a negative value must be attached: --lr=-1"; `nil` for every other error.
    static func negativeValueHint(for error: Error, arguments: [String]) -> String? {
        let message = Self.message(for: error)
        let prefix = "Missing value for '"
        guard let start = message.range(of: prefix)?.upperBound else { return nil }
        // The flag's name: up to the value name ("'--lr <lr>'") or the closing quote.
        let flag = String(message[start...].prefix { $0 != " " && $0 != "'" })
        guard flag.hasPrefix("-") else { return nil }
        for (i, argument) in arguments.enumerated().dropLast() where argument == flag {
            let value = arguments[i + 1]
            if value.hasPrefix("-"), Double(value) != nil {
                return "hint: a negative value must be attached: \(flag)=\(value)"
            }
        }
        return nil
    }

    /// For a first argument that is neither a flag nor a subcommand (`flow-mpirun trian --epochs 5`), the error
    /// "unknown subcommand 'trian' (did you mean 'train'?); the subcommands are train, sample, …"; `nil` otherwise.
    static func unknownSubcommand(in arguments: [String]) -> ValidationError? {
        guard let first = arguments.first, !first.hasPrefix("-") else { return nil }
        let names = configuration.subcommands.compactMap { $0.configuration.commandName } + ["help"]
        guard !names.contains(first) else { return nil }
        let known = names.dropLast().joined(separator: ", ")
        let close = names.dropLast().filter { editDistance($0, first) <= 2 || $0.hasPrefix(first) }
        let suggestion = close.isEmpty ? "" : " (did you mean \(close.map { "'\($0)'" }.joined(separator: " or "))?)"
        return ValidationError("unknown subcommand '\(first)'\(suggestion); the subcommands are \(known)")
    }

    /// The Levenshtein distance between `a` and `b` (insertions, deletions and substitutions of one character).
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty else { return b.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + [Int](repeating: 0, count: b.count)
            for j in stride(from: 1, through: b.count, by: 1) {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
