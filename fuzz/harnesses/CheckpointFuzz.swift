// libFuzzer target: Checkpoint.load(path:). There is no bytes-based entry point, so the harness writes each
// input to a private temporary file (under /dev/shm when it exists, else $TMPDIR or /tmp) and loads that.
//
// Oracles: no crash, hang or sanitizer report (this includes allocations sized from untrusted header fields:
// run.sh sets -malloc_limit_mb); every error is a FlowIOError naming the path (the documented contract of
// Checkpoint.load); a checkpoint that loads serialises to bytes that load back to the same bytes (the format
// promises that bytes are a pure function of the contents).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

private let checkpointPath: String = {
    var directory = "/tmp"
    if access("/dev/shm", W_OK) == 0 {
        directory = "/dev/shm"
    } else if let tmp = getenv("TMPDIR") {
        directory = String(cString: tmp)
    }
    return "\(directory)/flow-fuzz-checkpoint-\(getpid()).safetensors"
}()

nonisolated(unsafe) private var cleanupRegistered = false

private func writeFile(_ bytes: [UInt8], _ path: String) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    require(fd >= 0, "cannot create \(path): errno \(errno)")
    var done = 0
    bytes.withUnsafeBytes { raw in
        while done < raw.count {
            let n = write(fd, raw.baseAddress! + done, raw.count - done)
            require(n > 0, "cannot write \(path): errno \(errno)")
            done += n
        }
    }
    close(fd)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCheckpoint(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = fuzzInput(data, size)
    let path = checkpointPath
    if !cleanupRegistered {
        cleanupRegistered = true
        atexit { unlink(checkpointPath) }
    }
    writeFile(bytes, path)
    let checkpoint: Checkpoint
    do {
        checkpoint = try Checkpoint.load(path: path)
    } catch let error as FlowIOError {
        report("error: \(error)")
        checkError(error, path: path, allowPosition: false)
        return 0
    } catch {
        fatalError("fuzz oracle failed: Checkpoint.load threw a \(type(of: error)), not a FlowIOError: \(error)")
    }
    report("loaded")
    let serialized = checkpoint.serialize()
    writeFile(serialized, path)
    do {
        let again = try Checkpoint.load(path: path)
        require(again.serialize() == serialized, "a loaded checkpoint does not re-serialise to the same bytes")
    } catch {
        fatalError("fuzz oracle failed: a re-serialised checkpoint does not load: \(error)")
    }
    return 0
}
