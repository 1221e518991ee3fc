#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A file opened read-only through its file descriptor, closed when the value goes away.
///
/// Internal helper shared by the CSV, NPY and safetensors readers; every failure is a ``FlowIOError`` that
/// names `path` and the C library's error text.
struct ReadOnlyFile: ~Copyable {
    /// The file descriptor, open for reading.
    let descriptor: Int32
    /// The path as the caller spelled it, used in error messages.
    let path: String

    /// Opens `path` for reading.
    /// - Throws: ``FlowIOError`` when the file cannot be opened (missing, permissions, ...) or is a directory.
    init(path: String) throws(FlowIOError) {
        var fd: Int32
        repeat {
            fd = open(path, O_RDONLY | O_CLOEXEC)
        } while fd < 0 && errno == EINTR
        if fd < 0 {
            throw FlowIOError(path: path, message: "cannot open file: \(ReadOnlyFile.errnoText(errno))")
        }
        var info = stat()
        if fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw FlowIOError(path: path, message: "cannot read file: it is a directory")
        }
        self.descriptor = fd
        self.path = path
    }

    deinit { close(descriptor) }

    /// The file's size in bytes (from `fstat`).
    /// - Throws: ``FlowIOError`` when `fstat` fails or the file is not a regular file.
    func size() throws(FlowIOError) -> Int {
        var info = stat()
        if fstat(descriptor, &info) != 0 {
            throw FlowIOError(path: path, message: "cannot get the file size: \(ReadOnlyFile.errnoText(errno))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw FlowIOError(path: path, message: "not a regular file")
        }
        return Int(info.st_size)
    }

    /// Reads up to `buffer.count` bytes from the current position; returns 0 only at the end of the file.
    /// - Throws: ``FlowIOError`` when `read` fails.
    func readSome(into buffer: UnsafeMutableRawBufferPointer) throws(FlowIOError) -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        while true {
            let count = read(descriptor, base, buffer.count)
            if count >= 0 { return count }
            if errno == EINTR { continue }
            throw FlowIOError(path: path, message: "cannot read file: \(ReadOnlyFile.errnoText(errno))")
        }
    }

    /// Fills `buffer` completely with the bytes starting at byte `offset` of the file.
    /// - Throws: ``FlowIOError`` when `pread` fails or the file ends early (it shrank while being read).
    func readExactly(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws(FlowIOError) {
        guard let base = buffer.baseAddress else { return }
        var done = 0
        while done < buffer.count {
            let count = pread(descriptor, base + done, buffer.count - done, off_t(offset + done))
            if count < 0 {
                if errno == EINTR { continue }
                throw FlowIOError(path: path, message: "cannot read file: \(ReadOnlyFile.errnoText(errno))")
            }
            if count == 0 {
                throw FlowIOError(
                    path: path,
                    message: "file ended at byte \(offset + done) while reading \(buffer.count) bytes at offset \(offset); was it modified while being read?")
            }
            done += count
        }
    }

    /// Reads `count` bytes starting at byte `offset`. The caller has checked `offset + count` against ``size()``.
    /// - Throws: ``FlowIOError`` when reading fails or the file ends early.
    func readBytes(count: Int, at offset: Int) throws(FlowIOError) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: count)
        var failure: FlowIOError?
        result.withUnsafeMutableBytes { buffer in
            do throws(FlowIOError) { try readExactly(into: buffer, at: offset) } catch { failure = error }
        }
        if let failure { throw failure }
        return result
    }

    /// The text of the C library's message for an `errno` value, e.g. "No such file or directory".
    static func errnoText(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        return String(cString: text)
    }

    /// Reads a whole regular file into memory (its size is taken from `fstat` before allocating).
    /// - Throws: ``FlowIOError`` when the file cannot be opened, is not a regular file, or cannot be read.
    static func readAll(path: String) throws(FlowIOError) -> [UInt8] {
        let file = try ReadOnlyFile(path: path)
        let size = try file.size()
        return try file.readBytes(count: size, at: 0)
    }
}
