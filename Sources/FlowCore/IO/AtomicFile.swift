#if canImport(CFlowSupport)
import CFlowSupport
/// The registry of temporary files a second SIGINT removes (flow_temporary_file_register).
private func registerTemporary(_ path: String) -> Int32 { flow_temporary_file_register(path) }
private func unregisterTemporary(_ slot: Int32) { flow_temporary_file_unregister(slot) }
#else
// The parser-only fuzz targets compile this file without the C helpers: no registry there.
private func registerTemporary(_ path: String) -> Int32 { -1 }
private func unregisterTemporary(_ slot: Int32) {}
#endif

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Replaces a file's contents atomically: a reader sees either the old file or the complete new one,
/// never a partial write, even after a crash or power loss.
public enum AtomicFile {
    /// Writes `bytes` to `path` atomically.
    ///
    /// Steps: create a temporary file `.<name>.tmp-<pid>-<random hex>` in the same directory as `path`
    /// (exclusive create, permissions `0666` minus the umask), write all bytes, `fsync` it, `rename` it over `path`, then `fsync`
    /// the directory so the rename itself is durable. An existing file at `path` is replaced (its permissions
    /// are not carried over); a symbolic link at `path` is replaced by the new file rather than followed.
    ///
    /// - Parameters:
    ///   - bytes: the complete new contents of the file.
    ///   - path: the destination; its directory must exist and be writable.
    /// Fault injection (tests only): with `FLOW_TEST_CRASH_DURING_WRITE=<file name>` in the environment, a write
    /// to a file of that name kills the process with SIGKILL after half of the temporary file is written.
    ///
    /// - Throws: ``FlowIOError`` whose `path` is `path` and whose message names the failing step and the
    ///   C library's error text (e.g. `cannot create temporary file /d/.m.tmp-12-0: Permission denied`), or
    ///   `cannot write: the directory /d does not exist`.
    ///   The temporary file is removed on every failure before the rename.
    public static func write(_ bytes: [UInt8], to path: String) throws(FlowIOError) {
        try prepare(bytes, for: path).commit()
    }

    /// The first half of ``write(_:to:)``: the temporary file beside `path` created, written and fsynced, and
    /// `path` not yet touched. ``PreparedFile/commit()`` renames it over `path` (the second half);
    /// ``PreparedFile/discard()`` removes it. A writer that may be overtaken (``BackgroundFileWriter``) decides
    /// between the two only when the bytes are safely on disk.
    /// - Throws: ``FlowIOError`` as ``write(_:to:)`` (the temporary file is then removed).
    public static func prepare(_ bytes: [UInt8], for path: String) throws(FlowIOError) -> PreparedFile {
        // Never abandoned, so never nil.
        try prepare(bytes, for: path, abandoningWhen: { false })!
    }

    /// The bytes a chunked ``prepare(_:for:abandoningWhen:)`` writes between two checks (1 MiB).
    public static let chunkBytes = 1 << 20

    /// ``prepare(_:for:)`` that can give up part-way: the bytes are written in chunks of ``chunkBytes``, and before each
    /// chunk after the first, `abandon()` is asked whether to stop. If it answers true, the temporary file is closed and
    /// removed at once and the result is `nil` (so a writer that is overtaken never keeps a partial copy on disk beside
    /// the one that overtook it). Once every byte is written, the file is fsynced and returned whatever `abandon` would
    /// say: it is complete.
    /// - Parameters:
    ///   - bytes: the complete new contents of the file.
    ///   - path: the destination; its directory must exist and be writable.
    ///   - abandon: called on this thread between chunks (not for a file of at most one chunk).
    /// - Returns: the prepared file, or `nil` when abandoned (nothing is left on disk).
    /// - Throws: ``FlowIOError`` as ``write(_:to:)`` (the temporary file is then removed).
    public static func prepare(_ bytes: [UInt8], for path: String, abandoningWhen abandon: () -> Bool) throws(FlowIOError) -> PreparedFile? {
        guard !path.isEmpty, !path.hasSuffix("/") else {
            throw FlowIOError(path: path, message: "the path does not name a file (it is empty or ends with '/')")
        }
        let (directory, name) = splitPath(path)
        guard !name.isEmpty, name != ".", name != ".." else {
            throw FlowIOError(path: path, message: "the path does not name a file")
        }
        let temporary = (directory.map { $0 == "/" ? "/" : $0 + "/" } ?? "")
            + ".\(name).tmp-\(getpid())-\(String(UInt32.random(in: 0 ... .max), radix: 16))"

        var fd: Int32
        repeat {
            fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
        } while fd < 0 && errno == EINTR
        if fd < 0 {
            let code = errno
            if code == ENOENT {
                throw FlowIOError(path: path, message: "cannot write: the directory \(directory ?? ".") does not exist")
            }
            throw FlowIOError(path: path, message: "cannot create temporary file \(temporary): \(ReadOnlyFile.errnoText(code))")
        }

        // Removed by a second SIGINT's exit too (flow_temporary_files_remove), so that nothing partial is left.
        let slot = registerTemporary(temporary)
        func fail(_ step: String, _ code: Int32, closing: Bool) -> FlowIOError {
            if closing { close(fd) }
            unlink(temporary)
            unregisterTemporary(slot)
            return FlowIOError(path: path, message: "\(step) \(temporary): \(ReadOnlyFile.errnoText(code))")
        }

        if let victim = getenv("FLOW_TEST_CRASH_DURING_WRITE").map({ String(cString: $0) }), victim == name {
            // Fault-injection hook for the crash tests: die with half of the new file written.
            _ = writeAll(fd, bytes, 0 ..< bytes.count / 2)
            fsync(fd)
            kill(getpid(), SIGKILL)
        }
        var offset = 0
        while offset < bytes.count {
            if offset > 0 && abandon() {
                close(fd)
                unlink(temporary)
                unregisterTemporary(slot)
                return nil
            }
            let end = min(bytes.count, offset + chunkBytes)
            if let code = writeAll(fd, bytes, offset ..< end) { throw fail("cannot write temporary file", code, closing: true) }
            offset = end
        }
        if fsync(fd) != 0 { throw fail("cannot fsync temporary file", errno, closing: true) }
        if close(fd) != 0 { throw fail("cannot close temporary file", errno, closing: false) }
        return PreparedFile(path: path, temporary: temporary, directory: directory ?? ".", slot: slot)
    }

    /// A complete new file, written and fsynced under a temporary name beside its destination (``prepare(_:for:)``).
    public struct PreparedFile: Sendable {
        /// The destination.
        public let path: String
        /// The temporary file holding the new contents.
        public let temporary: String
        /// The directory of both.
        let directory: String
        /// The temporary file's registration (flow_temporary_file_register).
        let slot: Int32

        /// Renames the temporary file over ``path`` and fsyncs the directory, so that the rename is durable.
        /// - Throws: ``FlowIOError`` naming ``path`` (the temporary file is removed when the rename fails).
        public func commit() throws(FlowIOError) {
            defer { unregisterTemporary(slot) }
            if rename(temporary, path) != 0 {
                let code = errno
                unlink(temporary)
                throw FlowIOError(path: path, message: "cannot rename \(temporary) over the file: \(ReadOnlyFile.errnoText(code))")
            }
            try AtomicFile.syncDirectory(directory, target: path)
        }

        /// Removes the temporary file; ``path`` is left as it was.
        public func discard() {
            unlink(temporary)
            unregisterTemporary(slot)
        }
    }

    /// Splits `a/b/c` into (`a/b`, `c`); a bare name gives (`nil`, name); `/c` gives (`/`, `c`).
    static func splitPath(_ path: String) -> (directory: String?, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (nil, path) }
        let directory = path[..<slash]
        return (directory.isEmpty ? "/" : String(directory), String(path[path.index(after: slash)...]))
    }

    /// Makes a completed rename durable by syncing the directory that holds the file.
    static func syncDirectory(_ directory: String, target: String) throws(FlowIOError) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 {
            throw FlowIOError(
                path: target, message: "file written, but cannot open its directory \(directory) to fsync it: \(ReadOnlyFile.errnoText(errno))")
        }
        defer { close(fd) }
        // Some file systems cannot fsync a directory (EINVAL); the rename has happened, so that is not an error.
        if fsync(fd) != 0 && errno != EINVAL {
            throw FlowIOError(
                path: target, message: "file written, but cannot fsync its directory \(directory): \(ReadOnlyFile.errnoText(errno))")
        }
    }
}

/// Writes `bytes[range]` to `fd`, retrying short writes and `EINTR`; returns the `errno` of a failure, or `nil`.
private func writeAll(_ fd: Int32, _ bytes: [UInt8], _ range: Range<Int>) -> Int32? {
    bytes.withUnsafeBytes { all -> Int32? in
        guard let base = all.baseAddress, !range.isEmpty else { return nil }
        let buffer = UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count)
        var written = 0
        while written < buffer.count {
            let count = write(fd, buffer.baseAddress! + written, buffer.count - written)
            if count < 0 {
                if errno == EINTR { continue }
                return errno
            }
            written += count
        }
        return nil
    }
}
