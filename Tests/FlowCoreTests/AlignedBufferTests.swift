import Foundation
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

    /// The kernel records the advice: the mapping that holds a 2 MiB buffer carries the `hg` (MADV_HUGEPAGE)
    /// flag in /proc/self/smaps, and a small buffer's does not have to. Skipped where THP is off or smaps is absent.
    @Test("a buffer of 2 MiB or more is advised to use huge pages (VmFlags hg in /proc/self/smaps)")
    func hugePageAdvice() throws {
        guard let mode = try? String(contentsOfFile: "/sys/kernel/mm/transparent_hugepage/enabled", encoding: .utf8),
              !mode.contains("[never]"),
              Self.procFile("/proc/self/smaps") != nil else { return }
        let b = AlignedBuffer<Float>(count: 3 * AlignedBuffer<Float>.hugePageBytes / 4)
        let flags = try #require(Self.vmFlags(containing: UInt(bitPattern: b.base)), "no mapping holds the buffer")
        #expect(flags.contains("hg"), "VmFlags of the buffer's mapping: \(flags)")
    }

    /// A /proc file's text (read to its end: such files report a size of 0).
    static func procFile(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        return String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
    }

    /// The VmFlags of the mapping in /proc/self/smaps whose range holds `address`.
    static func vmFlags(containing address: UInt) -> [String]? {
        guard let smaps = procFile("/proc/self/smaps") else { return nil }
        var inside = false
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if let range = fields.first, range.contains("-"), !range.hasSuffix(":") {
                let bounds = range.split(separator: "-").compactMap { UInt($0, radix: 16) }
                inside = bounds.count == 2 && bounds[0] <= address && address < bounds[1]
            } else if inside, fields.first == "VmFlags:" {
                return fields.dropFirst().map(String.init)
            }
        }
        return nil
    }
}
