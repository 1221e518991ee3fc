#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif

/// Facts about, and settings of, the BLAS library this process links.
public enum BLASRuntime {
    /// The kernel family OpenBLAS selected at load time (e.g. `"SkylakeX"`, `"Haswell"`, or the slow
    /// generic `"Prescott"` when it does not recognise the CPU); `"Accelerate"` on Apple platforms.
    public static var coreName: String {
        #if canImport(Accelerate)
        return "Accelerate"
        #else
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
        #endif
    }

    /// OpenBLAS's build configuration string (version, DYNAMIC_ARCH, threading).
    public static var configuration: String {
        #if canImport(Accelerate)
        return "Accelerate"
        #else
        guard let s = openblas_get_config() else { return "unknown" }
        return String(cString: s)
        #endif
    }

    /// Keeps BLAS single-threaded: the trainer parallelises with its own worker threads, and a BLAS
    /// thread pool on top would oversubscribe the cores.
    public static func useSingleThread() {
        #if !canImport(Accelerate)
        openblas_set_num_threads(1)
        #endif
    }
}
