import CFlowSupport

/// Per-thread floating-point environment.
///
/// Adam's second-moment estimates of weights whose gradient stays zero decay geometrically into the
/// subnormal range, where every x86 arithmetic instruction is ~100× slower. Flush-to-zero and
/// denormals-are-zero (MXCSR FTZ|DAZ on x86-64, FPCR.FZ on AArch64) remove that cliff; they are per-thread
/// state, so every thread that computes calls ``enableFlushToZero()`` before its first step.
public enum FloatEnvironment {
    /// Turns on flush-to-zero and denormals-are-zero for the calling thread.
    @inline(__always)
    public static func enableFlushToZero() { flow_enable_flush_to_zero() }

    /// Restores IEEE gradual underflow for the calling thread.
    public static func disableFlushToZero() { flow_disable_flush_to_zero() }

    /// Runs `body` with flush-to-zero on the calling thread, then restores the thread's previous
    /// floating-point control state (threads borrowed from Dispatch or a caller keep their own settings).
    @inline(__always)
    public static func withFlushToZero<T>(_ body: () throws -> T) rethrows -> T {
        let saved = flow_get_float_control()
        flow_enable_flush_to_zero()
        defer { flow_set_float_control(saved) }
        return try body()
    }

    /// Whether the calling thread flushes subnormals to zero.
    public static var flushesToZero: Bool { flow_flush_to_zero_enabled() != 0 }
}
