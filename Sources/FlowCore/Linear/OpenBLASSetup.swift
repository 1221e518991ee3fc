import CFlowSupport
import Foundation

/// Makes sure OpenBLAS runs its fast kernels, single-threaded.
///
/// Debian 12's OpenBLAS 0.3.21 does not recognise some recent CPUs (e.g. Intel Sapphire Rapids) and
/// falls back to its generic "Prescott" kernels, about 4× slower on our shapes. It reads
/// `OPENBLAS_CORETYPE` only when the library loads, before `main`, so the fix has to be applied to the
/// environment of a *new* process image: ``ensureOptimizedKernels(arguments:)`` detects the fallback,
/// sets `OPENBLAS_CORETYPE` (`SkylakeX` when the CPU has AVX-512, `Haswell` with AVX2) and
/// `OPENBLAS_NUM_THREADS=1`, and re-executes the same binary with the same arguments (same PID, so this
/// is transparent to `mpirun`). It does nothing when the user set `OPENBLAS_CORETYPE`, when the kernels
/// are already specific, or after one re-execution.
public enum OpenBLASSetup {
    /// OpenBLAS core names that mean "generic fallback" on a modern x86-64 CPU.
    public static let fallbackCores: Set<String> = ["Prescott", "Core2", "Penryn", "Dunnington", "Atom", "Unknown", "unknown"]

    /// The core type to request for this CPU, or nil when nothing better is known.
    public static func preferredCoreType() -> String? {
        if flow_cpu_has_avx512f() != 0 { return "SkylakeX" }
        if flow_cpu_has_avx2() != 0 { return "Haswell" }
        return nil
    }

    /// What to do, as a pure function of the facts (tested separately): the core type to re-execute
    /// with, or nil to continue.
    public static func decision(coreName: String, environment: [String: String], preferred: String?) -> String? {
        if environment["OPENBLAS_CORETYPE"] != nil || environment["FLOW_OPENBLAS_REEXEC"] != nil { return nil }
        guard fallbackCores.contains(coreName), let preferred else { return nil }
        return preferred
    }

    /// Re-executes the process with `OPENBLAS_CORETYPE` set when OpenBLAS fell back to generic kernels
    /// (see the type's documentation); otherwise sets BLAS to one thread and returns. Call first in `main`,
    /// before MPI is initialised or any thread is started.
    public static func ensureOptimizedKernels(arguments: [String] = CommandLine.arguments) {
        let env = ProcessInfo.processInfo.environment
        if let core = decision(coreName: BLASRuntime.coreName, environment: env, preferred: preferredCoreType()) {
            setenv("OPENBLAS_CORETYPE", core, 1)
            if env["OPENBLAS_NUM_THREADS"] == nil { setenv("OPENBLAS_NUM_THREADS", "1", 1) }
            setenv("FLOW_OPENBLAS_REEXEC", "1", 1)
            var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
            argv.append(nil)
            execv("/proc/self/exe", &argv)
            // execv returned: could not re-execute; continue with the generic kernels.
            unsetenv("FLOW_OPENBLAS_REEXEC")
        }
        BLASRuntime.useSingleThread()
    }
}
