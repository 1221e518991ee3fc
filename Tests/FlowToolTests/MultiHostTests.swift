import Foundation
import Testing

/// Separate hosts on one machine: network namespaces h1…h3, each with its own eth0 on a bridge
/// (`cluster/netns/up.sh`), ranks started in them by mpirun's rsh launcher (`cluster/netns/launch.sh`), talking
/// TCP between hosts. Exact-mode bytes across hosts, and what happens when a rank, a host or a link fails: each
/// failure must end the job with a non-zero exit within a bound that only a wrong behaviour (a hang) can reach,
/// and leave no process behind. Needs root and permission to create network namespaces; skipped otherwise.
@Suite("Multi-host cluster on one box (network namespaces)", .serialized)
struct MultiHostTests {
    static let hosts = 3
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let scripts = "\(repository)/cluster/netns"
    static let exact = ["--reproducible", "--micro-batch", "16", "--threads", "1"]

    /// Why the suite cannot run on this machine, or nil. Installs the scripts' prerequisites when missing.
    static let unavailable: String? = {
        guard getuid() == 0 else { return "not root (network namespaces need root)" }
        guard MPIToolTests.mpirun != nil else { return "mpirun not found (apt install openmpi-bin)" }
        guard Tool.exists(Tool.binary) else { return "\(Tool.binary) not built" }
        let probe = try? shell(". '\(scripts)/common.sh' && flow_netns_prerequisites && "
                               + "ip netns add flowprobe$$ && ip netns del flowprobe$$", timeout: 300)
        guard let probe else { return "could not run bash" }
        guard probe.status == 0 else {
            return "cannot create network namespaces here (`ip netns add` failed): "
                + probe.output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return nil
    }()

    @discardableResult
    static func shell(_ command: String, timeout: Double = 60) throws -> Tool.Result {
        try Tool.run("/bin/bash", ["-c", command], timeout: timeout)
    }

    /// `cluster/netns/launch.sh -n hosts mpirunArguments -- flowArguments` with the tests' flow-mpirun.
    static func launch(_ mpirunArguments: [String], _ flowArguments: [String], timeout: Double) throws -> Tool.Result {
        try Tool.run("\(scripts)/launch.sh", ["-n", String(hosts)] + mpirunArguments + ["--"] + flowArguments,
                     environment: ["FLOW_BIN": Tool.binary], timeout: timeout)
    }

    /// PIDs in each namespace of the cluster (hosts and bridge) that has any.
    static func processesLeft() -> [String: String] {
        var left: [String: String] = [:]
        for ns in (1...hosts).map({ "h\($0)" }) + ["flowbr"] {
            let pids = ((try? shell("ip netns pids \(ns) 2>/dev/null"))?.stdout ?? "")
                .split(whereSeparator: \.isNewline).joined(separator: " ")
            if !pids.isEmpty { left[ns] = pids }
        }
        return left
    }

    /// Runs `body` on a fresh cluster of `hosts` hosts, then checks that the job left no process in any
    /// namespace (waiting up to 15 s: a cut-off host's daemon notices on its own, through its keepalive),
    /// and tears the cluster down.
    static func withCluster(_ name: String, _ body: (String) throws -> Void) throws {
        if let reason = unavailable { print("skipped \(name): \(reason)"); return }
        let dir = try Tool.temporaryDirectory()
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            let down = try? shell("'\(scripts)/down.sh'")
            #expect(down?.status == 0, "down.sh: \(down?.output ?? "did not run")")
            let namespaces = (try? shell("ip netns list"))?.stdout ?? ""
            #expect(!namespaces.split(whereSeparator: \.isNewline).contains { $0.hasPrefix("flowbr") || $0.hasPrefix("h") },
                    "namespaces left after down.sh: \(namespaces)")
        }
        let up = try shell("'\(scripts)/up.sh' \(hosts)", timeout: 300)
        try #require(up.status == 0, "up.sh: \(up.output)")
        try body(dir)
        let start = Date()
        var left = processesLeft()
        while !left.isEmpty && Date().timeIntervalSince(start) < 15 {
            usleep(200_000)
            left = processesLeft()
        }
        #expect(left.isEmpty, "processes left in the namespaces after the job ended: \(left)")
        print("\(name): namespaces empty \(String(format: "%.1f", Date().timeIntervalSince(start))) s after the job ended")
    }

    /// A job running in the background; `wait()` gives its result and when it ended.
    final class Job: @unchecked Sendable {
        private let lock = NSLock()
        private var result: Result<Tool.Result, Error>?
        private var end: Date?
        private let done = DispatchSemaphore(value: 0)

        init(_ work: @escaping @Sendable () throws -> Tool.Result) {
            Thread.detachNewThread { [self] in
                let r = Result { try work() }
                lock.lock(); result = r; end = Date(); lock.unlock()
                done.signal()
            }
        }

        var finished: Bool { lock.lock(); defer { lock.unlock() }; return end != nil }

        func wait() throws -> (result: Tool.Result, end: Date) {
            done.wait()
            lock.lock(); defer { lock.unlock() }
            return (try result!.get(), end!)
        }
    }

    /// Waits until `file` exists (rank 0 holds there, `FLOW_TEST_FAULT=hold@0:S`), or the job ended.
    static func waitForHold(_ file: String, _ job: Job, deadline: Double = 300) -> Bool {
        let end = Date().addingTimeInterval(deadline)
        while Date() < end && !job.finished {
            if Tool.exists(file) { return true }
            usleep(20_000)
        }
        return false
    }

    static func seconds(_ t: Double) -> String { String(format: "%.1f s", t) }

    @Test("exact mode: 3 hosts × 1 rank write the same model bytes as one process")
    func exactAcrossHosts() throws {
        try Self.withCluster("exactAcrossHosts") { dir in
            let single = try Tool.flow(Tool.smallTraining(out: "\(dir)/one", epochs: 5, extra: Self.exact))
            #expect(single.status == 0, "\(single.output)")
            let reference = try #require(Tool.bytes("\(dir)/one/model.safetensors"))
            let r = try Self.launch(["--display-map"], Tool.smallTraining(out: "\(dir)/hosts", epochs: 5, extra: Self.exact).filter { $0 != "--quiet" },
                                    timeout: 120)
            #expect(r.status == 0, "\(r.output)")
            #expect(r.output.contains("3 ranks × 1 thread (MPI (Open MPI"), "\(r.output)")
            #expect(r.output.contains("3 hosts, exact fixed-point allreduce"), "the ranks must count as 3 hosts: \(r.output)")
            for h in 1...Self.hosts {
                #expect(r.output.contains("Data for node: h\(h)\t"), "no rank on h\(h): \(r.output)")
            }
            #expect(Tool.bytes("\(dir)/hosts/model.safetensors") == reference, "3 hosts differ from 1 process")
            print("exactAcrossHosts: 3 hosts in \(Self.seconds(r.seconds)), 1 process in \(Self.seconds(single.seconds))")
        }
    }

    @Test("a rank killed with SIGKILL ends the job with exit ≠ 0 within 10 s")
    func killedRank() throws {
        try Self.withCluster("killedRank") { dir in
            // Rank 2 (on h3) is killed while rank 0 holds at step 8; its daemon lives on.
            let (r, after, midRun) = try Self.faultMidRun(dir) { release in
                let k = try Self.shell("for p in $(ip netns pids h3); do [ \"$(cat /proc/$p/comm)\" = flow-mpirun ] && kill -9 $p && echo $p; done")
                try #require(!k.stdout.isEmpty, "no rank found in h3: \(k.output)")
                release()
            }
            print("killedRank: job ended \(Self.seconds(after)) after rank 2 was killed, status \(r.status)")
            #expect(midRun, "training had not started or had already ended: \(r.output)")
            #expect(r.status != 0, "\(r.output)")
            #expect(after < 10, "took \(after) s: \(r.output)")
        }
    }

    /// Starts a run whose rank 0 holds at step 8 (epoch 3, after two checkpoints; `FLOW_TEST_FAULT=hold@0:8`
    /// with `FLOW_TEST_HOLD_FILE`), so the fault always lands mid-run however fast the machine; calls `fault`
    /// with a `release` that lets rank 0 go on (into the broken network); returns the result and the seconds
    /// from the fault to the end of the job.
    static func faultMidRun(_ dir: String, epochs: Int = 2000, timeout: Double = 120,
                            fault: (_ release: () -> Void) throws -> Void) throws -> (result: Tool.Result, secondsAfterFault: Double, midRun: Bool) {
        let out = "\(dir)/out", hold = "\(dir)/hold"
        let job = Job {
            try Self.launch(["-x", "FLOW_TEST_FAULT=hold@0:8", "-x", "FLOW_TEST_HOLD_FILE=\(hold)"],
                            Tool.smallTraining(out: out, epochs: epochs, extra: Self.exact), timeout: timeout)
        }
        let midRun = waitForHold(hold, job)
        let faultTime = Date()
        try fault { try? FileManager.default.removeItem(atPath: hold) }
        let (r, end) = try job.wait()
        return (r, end.timeIntervalSince(faultTime), midRun)
    }

    @Test("a host whose daemon and rank are killed ends the job with exit ≠ 0 within 10 s")
    func killedHost() throws {
        try Self.withCluster("killedHost") { dir in
            let (r, after, midRun) = try Self.faultMidRun(dir) { release in
                try Self.shell("ip netns pids h3 | xargs -r kill -9")
                release()
            }
            print("killedHost: job ended \(Self.seconds(after)) after every process of h3 was killed, status \(r.status)")
            #expect(midRun, "training had not started or had already ended: \(r.output)")
            #expect(r.status != 0, "\(r.output)")
            #expect(after < 10, "took \(after) s: \(r.output)")
        }
    }

    @Test("a host's link cut ends the job with exit ≠ 0 within 30 s instead of hanging")
    func cutLink() throws {
        try Self.withCluster("cutLink") { dir in
            let (r, after, midRun) = try Self.faultMidRun(dir) { release in
                let cut = try Self.shell("ip -n flowbr link set vh3 down")   // h3's cable, at the switch
                try #require(cut.status == 0, "\(cut.output)")
                release()
            }
            print("cutLink: job ended \(Self.seconds(after)) after h3's link was cut, status \(r.status)")
            #expect(midRun, "training had not started or had already ended: \(r.output)")
            #expect(r.status != 0, "\(r.output)")
            #expect(after < 30, "took \(after) s (a hang?): \(r.output)")
        }
    }

    /// The undisturbed result of the link-flap runs (exact mode: one process gives the cluster's bytes).
    static func flapReference(_ dir: String, epochs: Int) throws -> [UInt8] {
        let r = try Tool.flow(Tool.smallTraining(out: "\(dir)/reference", epochs: epochs, extra: exact), timeout: 300)
        try #require(r.status == 0, "\(r.output)")
        return try #require(Tool.bytes("\(dir)/reference/model.safetensors"))
    }

    @Test("a link that drops and comes back: the job completes with the undisturbed bytes, or fails; never a wrong model",
          arguments: [10.0, 3.0])
    func flappingLink(drop: Double) throws {
        try Self.withCluster("flappingLink(\(drop) s)") { dir in
            // 20 epochs (80 steps; rank 0 holds at step 8 until the link is down): little work is left after the
            // link comes back, and only a hang reaches the guard, however slow or loaded the machine.
            let epochs = 20, guardSeconds = 900.0
            let out = "\(dir)/out"
            let (r, after, midRun) = try Self.faultMidRun(dir, epochs: epochs, timeout: guardSeconds) { release in
                let down = try Self.shell("ip -n flowbr link set vh3 down")   // h3's cable, at the switch
                try #require(down.status == 0, "\(down.output)")
                release()   // rank 0 goes on into the dead link
                usleep(UInt32(drop * 1_000_000))
                let up = try Self.shell("ip -n flowbr link set vh3 up")
                try #require(up.status == 0, "\(up.output)")
            }
            let afterRestore = after - drop
            #expect(midRun, "training had not started or had already ended when the link dropped: \(r.output)")
            if r.status == 0 {
                let same = try Tool.bytes("\(out)/model.safetensors") == Self.flapReference(dir, epochs: epochs)
                print("flappingLink(\(drop) s): completed \(Self.seconds(afterRestore)) after the link came back; "
                      + "bytes \(same ? "equal to" : "DIFFERENT from") the undisturbed run's")
                #expect(same, "exit 0 with a model that differs from the undisturbed run's: \(r.output)")
            } else {
                print("flappingLink(\(drop) s): failed with status \(r.status), \(Self.seconds(after)) after the link dropped")
            }
            #expect(r.seconds < guardSeconds, "a hang: still running \(afterRestore) s after the link came back, ended by the test's guard: \(r.output)")
        }
    }
}
