import Foundation

/// This machine's memory, for refusing requests that could never fit (a data set, a batch of samples, a
/// model's training buffers) with a message instead of an allocation failure.
public enum MachineMemory {
    /// Physical memory in bytes: `sysconf(_SC_PHYS_PAGES)` × `sysconf(_SC_PAGESIZE)`; `Int.max` when the system
    /// does not say (so that nothing is refused on a guess) or the product overflows.
    public static var physicalBytes: Int {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, pageSize > 0 else { return .max }
        let (bytes, overflow) = pages.multipliedReportingOverflow(by: pageSize)
        return overflow ? .max : bytes
    }
}
