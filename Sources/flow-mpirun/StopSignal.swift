import Foundation

/// The signals that stop `train` gracefully (docs/stopping.md): the ranks agree to stop after the same step,
/// rank 0 writes a checkpoint, and every rank exits with 128 + signal.
enum StopSignal {
    /// `SIGINT`, `SIGTERM`, `SIGUSR1`, `SIGUSR2`, else `signal N`.
    static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        case SIGUSR1: "SIGUSR1"
        case SIGUSR2: "SIGUSR2"
        default: "signal \(signal)"
        }
    }
}
