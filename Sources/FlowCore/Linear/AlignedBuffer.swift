import CFlowSupport

/// A fixed-size, 64-byte-aligned, zero-initialised buffer of `count` scalars, allocated once and freed
/// with its owner.
///
/// Workspaces, parameter and gradient buffers of the hot path are `AlignedBuffer`s so that a training
/// step performs no heap allocation. It is a reference type with unchecked sendability: several worker
/// threads may write *disjoint* regions of one buffer concurrently; the caller guarantees disjointness.
public final class AlignedBuffer<Element>: @unchecked Sendable {
    /// Number of elements.
    public let count: Int
    /// Start of the storage; valid for `count` elements until the buffer is deallocated.
    public let base: UnsafeMutablePointer<Element>

    /// Buffers of at least this many bytes (2 MiB, one x86-64 huge page) are 2 MiB-aligned and advised to use
    /// transparent huge pages.
    public static var hugePageBytes: Int { 2 << 20 }

    /// Allocates `count` elements, every byte zero. `count` may be 0.
    ///
    /// A buffer of 2 MiB or more (parameters, gradients, Adam's moments, activations of a large shard) is
    /// 2 MiB-aligned and, before it is first touched, advised to be backed by transparent huge pages (Linux
    /// `madvise(MADV_HUGEPAGE)`; with THP in its common `madvise` mode nothing is huge otherwise): one TLB entry
    /// then maps 2 MiB instead of 4 KiB, which the optimiser's streaming passes over several such buffers and the
    /// matrix products' reads of the weights feel. Contents and results are the same either way.
    public init(count: Int) {
        precondition(count >= 0, "AlignedBuffer: negative count \(count)")
        self.count = count
        let bytes = max(count, 1) * MemoryLayout<Element>.stride
        let huge = bytes >= Self.hugePageBytes
        // A huge buffer is allocated to whole huge pages, so that its last part is not left on small pages.
        let allocated = huge ? (bytes + Self.hugePageBytes - 1) / Self.hugePageBytes * Self.hugePageBytes : bytes
        let raw = UnsafeMutableRawPointer.allocate(byteCount: allocated, alignment: huge ? Self.hugePageBytes : 64)
        if huge { _ = flow_advise_huge_pages(raw, allocated) }
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        base = raw.bindMemory(to: Element.self, capacity: max(count, 1))
    }

    /// Allocates a buffer holding a copy of `values`.
    public convenience init(_ values: [Element]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { src in
            if let s = src.baseAddress { base.update(from: s, count: values.count) }
        }
    }

    deinit { UnsafeMutableRawPointer(base).deallocate() }

    /// The whole buffer as a mutable buffer pointer.
    @inlinable public var buffer: UnsafeMutableBufferPointer<Element> {
        UnsafeMutableBufferPointer(start: base, count: count)
    }

    /// A copy of the contents as an array.
    public var array: [Element] { Array(buffer) }

    /// Element access (bounds-checked in debug builds only).
    @inlinable public subscript(i: Int) -> Element {
        get { assert(i >= 0 && i < count); return base[i] }
        set { assert(i >= 0 && i < count); base[i] = newValue }
    }

    /// Overwrites the contents with `values` (same count).
    public func assign(_ values: [Element]) {
        precondition(values.count == count, "AlignedBuffer.assign: \(values.count) values for \(count) slots")
        values.withUnsafeBufferPointer { src in
            if let s = src.baseAddress { base.update(from: s, count: count) }
        }
    }
}

extension AlignedBuffer where Element: Numeric {
    /// Sets every element to zero.
    public func zero() { base.update(repeating: 0, count: count) }
}
