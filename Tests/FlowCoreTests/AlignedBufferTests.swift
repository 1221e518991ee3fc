import Testing
@testable import FlowCore

@Suite("Aligned buffers")
struct AlignedBufferTests {
    /// Below 2 MiB a buffer is 64-byte aligned; from 2 MiB it is aligned to the huge page (the alignment
    /// `madvise(MADV_HUGEPAGE)` needs to back it with 2 MiB pages); either way every element starts at zero and
    /// holds what is written to it.
    @Test("64-byte alignment below 2 MiB, 2 MiB alignment from 2 MiB; zero-initialised either way",
          arguments: [0, 1, 1000, AlignedBuffer<Float>.hugePageBytes / 4 - 1, AlignedBuffer<Float>.hugePageBytes / 4,
                      3 * AlignedBuffer<Float>.hugePageBytes / 4 + 5])
    func alignmentAndZeros(count: Int) {
        let b = AlignedBuffer<Float>(count: count)
        let address = Int(bitPattern: b.base)
        let huge = count * 4 >= AlignedBuffer<Float>.hugePageBytes
        #expect(address % (huge ? AlignedBuffer<Float>.hugePageBytes : 64) == 0, "count \(count): address \(address)")
        #expect(b.buffer.allSatisfy { $0 == 0 }, "count \(count)")
        for e in stride(from: 0, to: count, by: 4099) { b[e] = Float(e) }
        for e in stride(from: 0, to: count, by: 4099) { #expect(b[e] == Float(e)) }
    }
}
