import FlowCore
import Foundation
import Testing

/// `flow-mpirun bench --report`: efficiency and the α–β performance model's prediction per point.
@Suite("flow-mpirun bench --report")
struct ScalingReportToolTests {
    static let csv = """
        kind,ranks,threads,workers,batch,samples_per_s,ms_per_step,compute_ms,allreduce_ms,optimizer_ms
        strong,1,1,1,256,5000,51.2,40,0,3
        strong,2,1,2,256,9000,28.44,20,1,3
        weak,1,1,1,256,5000,51.2,40,0,3
        weak,2,1,2,512,9500,53.89,40,1,3

        """

    @Test("efficiency against 1 × 1, and the predicted ms/step with its error")
    func prediction() throws {
        let dir = try Tool.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.csv.write(toFile: "\(dir)/s.csv", atomically: true, encoding: .utf8)
        let r = try Tool.flow(["bench", "--report", "\(dir)/s.csv", "--markdown", "\(dir)/s.md", "--svg", "\(dir)/s.svg",
                               "--alpha-us", "10", "--beta-gbs", "1", "--hidden-share", "0.5"])
        #expect(r.status == 0, "\(r.output)")
        let md = try String(contentsOfFile: "\(dir)/s.md", encoding: .utf8)
        // The seed model's gradient: 4 bytes per stored parameter.
        let bytes = Double(4 * (try ParameterLayout(FlowConfiguration(dim: 2, couplings: 6, hidden: 256, hiddenLayers: 4))).storageCount)
        // Ring allreduce on 2 ranks: 2(p−1)α + 2(p−1)/p · n/β = 2·10 µs + n / 1 GB/s; half of it exposed.
        let exposedMs = 0.5 * (2 * 10e-6 + bytes / 1e9) * 1e3
        let cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let sharing = max(1, 2.0 / Double(cores))
        let strong = (40.0 * 128 / 256 + 3) * sharing + exposedMs   // half the rows per rank
        let weak = (40.0 + 3) * sharing + exposedMs                 // the same rows per rank
        #expect(md.contains(String(format: "| strong | 2 × 1 | 2 | 256 | 9000 | 90%% | 28.44 | 20.00 | 1.00 | 3.00 | %.2f | %+.1f%% |",
                                   strong, 100 * (strong - 28.44) / 28.44)), "\(md)")
        #expect(md.contains(String(format: "| weak | 2 × 1 | 2 | 512 | 9500 | 95%% | 53.89 | 40.00 | 1.00 | 3.00 | %.2f | %+.1f%% |",
                                   weak, 100 * (weak - 53.89) / 53.89)), "\(md)")
        // The 1-rank point is the model's base: predicted exactly.
        #expect(md.contains("| strong | 1 × 1 | 1 | 256 | 5000 | 100% | 51.20 | 40.00 | 0.00 | 3.00 | 43.00 | -16.0% |"), "\(md)")
        #expect(md.contains("predicted ms/step | error |"))
        let svg = try String(contentsOfFile: "\(dir)/s.svg", encoding: .utf8)
        #expect(svg.contains("Parallel efficiency"))

        // Without a network model: no prediction columns.
        let plain = try Tool.flow(["bench", "--report", "\(dir)/s.csv"])
        #expect(plain.status == 0)
        #expect(!plain.stdout.contains("predicted"))
        // α without β is refused, naming the flags.
        let half = try Tool.flow(["bench", "--report", "\(dir)/s.csv", "--alpha-us", "10"])
        #expect(half.status != 0)
        #expect(half.stderr.contains("--alpha-us and --beta-gbs go together"), "\(half.stderr)")
    }
}
