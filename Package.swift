// swift-tools-version:6.0
// RealNVP normalizing-flow trainer: FlowCore (the math), FlowDistributed (threads, ranks, trainer),
// and the `flow-mpirun` command-line tool.
import PackageDescription

#if os(Linux)
let blasDependency: [Target.Dependency] = ["CBLAS"]
#else
let blasDependency: [Target.Dependency] = []  // Accelerate on Apple platforms
#endif

/// Release builds: cross-module optimisation lets the compiler specialise FlowCore's generic kernels
/// (Scalar == Float) inside the trainer's module (without it every element-wise loop would go through
/// protocol witness tables); and on x86-64 the code targets AVX2 + FMA (`haswell`, any x86-64 CPU since
/// 2013), overridable with FLOW_TARGET_CPU=<llvm cpu name> or FLOW_TARGET_CPU=generic at build time.
#if arch(x86_64)
let targetCPU: String? = {
    let requested = Context.environment["FLOW_TARGET_CPU"] ?? "haswell"
    return requested == "generic" ? nil : requested
}()
#else
let targetCPU: String? = nil
#endif
let crossModule: [SwiftSetting] = [
    .unsafeFlags(["-cross-module-optimization"] + (targetCPU.map { ["-target-cpu", $0] } ?? []), .when(configuration: .release))
]
/// C kernels: vectorised sqrt needs -fno-math-errno (else each sqrt may call libm to set errno).
let cKernels: [CSetting] = [
    .unsafeFlags(["-fno-math-errno"]),
    .unsafeFlags(["-O3"] + (targetCPU.map { ["-march=\($0)"] } ?? []), .when(configuration: .release)),
]

let package = Package(
    name: "RealNVPFlow",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "flow-mpirun", targets: ["flow-mpirun"]),
        .library(name: "FlowCore", targets: ["FlowCore"]),
        .library(name: "FlowDistributed", targets: ["FlowDistributed"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.0.0"),
        .package(url: "https://github.com/ordo-one/malloc-interposer", from: "1.6.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi",
            providers: [.apt(["libopenmpi-dev", "openmpi-bin"]), .brew(["open-mpi"])]),
        .systemLibrary(
            name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]),
        .target(name: "CFlowSupport", path: "Sources/CFlowSupport", cSettings: cKernels),
        .target(name: "FlowPlots", path: "Sources/FlowPlots"),
        .target(
            name: "FlowCore",
            dependencies: blasDependency + ["CFlowSupport", "CZlib", .product(name: "RealModule", package: "swift-numerics")],
            path: "Sources/FlowCore",
            swiftSettings: crossModule),
        .target(
            name: "FlowDistributed",
            dependencies: ["FlowCore", "CMPI", "CFlowSupport", .product(name: "Logging", package: "swift-log")],
            path: "Sources/FlowDistributed",
            swiftSettings: crossModule),
        .executableTarget(
            name: "flow-mpirun",
            dependencies: [
                "FlowCore", "FlowDistributed", "FlowPlots", "CFlowSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/flow-mpirun",
            swiftSettings: crossModule),
        .executableTarget(
            name: "flow-alloc-count",
            dependencies: ["FlowCore", "FlowDistributed", .product(name: "MallocInterposerSwift", package: "malloc-interposer")],
            path: "Benchmarks/AllocationCount",
            swiftSettings: crossModule),
        .executableTarget(
            name: "flow-conv-bench", dependencies: ["FlowCore"], path: "Benchmarks/ConvolutionTiming",
            swiftSettings: crossModule),
        .testTarget(
            name: "FlowCoreTests", dependencies: ["FlowCore"], path: "Tests/FlowCoreTests",
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "FlowDistributedTests", dependencies: ["FlowCore", "FlowDistributed"],
            path: "Tests/FlowDistributedTests"),
        .testTarget(name: "FlowPlotsTests", dependencies: ["FlowPlots"], path: "Tests/FlowPlotsTests"),
        .testTarget(
            name: "FlowToolTests", dependencies: ["FlowCore", "flow-mpirun"], path: "Tests/FlowToolTests",
            resources: [.copy("Fixtures")]),
    ],
    swiftLanguageModes: [.v6]
)
