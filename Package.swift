// swift-tools-version:6.0
// Phalanx: fault-tolerant, elastic, data-parallel training on CPU clusters.
import PackageDescription

let package = Package(
    name: "Phalanx",
    products: [
        .library(name: "Phalanx", targets: ["Phalanx"]),
        .library(name: "PhalanxTensor", targets: ["PhalanxTensor"]),
        .library(name: "PhalanxNN", targets: ["PhalanxNN"]),
        .library(name: "PhalanxData", targets: ["PhalanxData"]),
        .library(name: "PhalanxCollectives", targets: ["PhalanxCollectives"]),
        .library(name: "PhalanxTesting", targets: ["PhalanxTesting"]),
        .library(name: "PhalanxTCP", targets: ["PhalanxTCP"]),
        .library(name: "PhalanxMPI", targets: ["PhalanxMPI"]),
        .library(name: "PhalanxCheckpoint", targets: ["PhalanxCheckpoint"]),
        .library(name: "PhalanxElastic", targets: ["PhalanxElastic"]),
        .library(name: "PhalanxEtcd", targets: ["PhalanxEtcd"]),
        .library(name: "PhalanxTelemetry", targets: ["PhalanxTelemetry"]),
        .library(name: "PhalanxPrometheus", targets: ["PhalanxPrometheus"]),
        .executable(name: "phalanx-run", targets: ["phalanx-run"]),
        .executable(name: "MNISTMLP", targets: ["MNISTMLP"]),
        .executable(name: "SyntheticMLP", targets: ["SyntheticMLP"]),
        .executable(name: "QuickStart", targets: ["QuickStart"]),
        .executable(name: "phalanx-bench", targets: ["phalanx-bench"]),
        .executable(name: "DigitsMLP", targets: ["DigitsMLP"]),
        .executable(name: "DigitsCNN", targets: ["DigitsCNN"]),
        .executable(name: "TinyGPT", targets: ["TinyGPT"]),
        .executable(name: "phalanx-check", targets: ["phalanx-check"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.100.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // System libraries (apt: libopenblas-dev, libopenmpi-dev, libxxhash-dev).
        .systemLibrary(
            name: "CXXHash",
            pkgConfig: "libxxhash",
            providers: [.apt(["libxxhash-dev"])]
        ),
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .systemLibrary(
            name: "CMPI",
            pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev"])]
        ),

        // Library modules.
        .target(name: "PhalanxTensor", dependencies: ["CBLAS"]),
        .target(name: "PhalanxNN", dependencies: ["PhalanxTensor"]),
        .target(
            name: "PhalanxData",
            dependencies: ["PhalanxTensor"],
            resources: [.copy("Resources/optdigits.csv"), .copy("Resources/OPTDIGITS.md"), .copy("Resources/tinyshakespeare.txt"), .copy("Resources/TINYSHAKESPEARE.md")]
        ),
        .target(name: "PhalanxCollectives", dependencies: ["PhalanxTensor"]),
        .target(name: "PhalanxTesting", dependencies: ["PhalanxCollectives", "PhalanxElastic", "PhalanxTCP", "PhalanxCheckpoint"]),
        .target(
            name: "PhalanxTCP",
            dependencies: ["PhalanxCollectives", .product(name: "Logging", package: "swift-log"), .product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(name: "PhalanxMPI", dependencies: ["PhalanxCollectives", "CMPI"]),
        .target(name: "PhalanxCheckpoint", dependencies: ["PhalanxTensor", "CXXHash"]),
        .target(
            name: "PhalanxElastic",
            dependencies: ["PhalanxCollectives", "PhalanxTCP", "PhalanxCheckpoint", "PhalanxNN", "PhalanxTelemetry", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "PhalanxEtcd",
            dependencies: [
                "PhalanxElastic", "PhalanxTCP", .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .target(name: "PhalanxTelemetry", dependencies: [.product(name: "CoreMetrics", package: "swift-metrics")]),
        // Prometheus exposition of the library's swift-metrics (workers and launchers; library
        // modules record through swift-metrics only).
        .target(
            name: "PhalanxPrometheus",
            dependencies: [
                "PhalanxTelemetry", .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"), .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOConcurrencyHelpers", package: "swift-nio"), .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        .target(name: "Phalanx", dependencies: ["PhalanxTensor", "PhalanxNN", "PhalanxData", "PhalanxCollectives", "PhalanxTCP"]),

        // Tools and examples.
        .executableTarget(
            name: "phalanx-bench",
            dependencies: [
                "Phalanx", "CBLAS", "CMPI", "PhalanxMPI", "PhalanxTesting", "PhalanxCheckpoint", "PhalanxElastic", "PhalanxPrometheus", "PhalanxTelemetry",
                .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "phalanx-check",
            dependencies: ["Phalanx", "PhalanxMPI", "PhalanxTesting", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .target(
            name: "TrainerKit",
            dependencies: [
                "Phalanx", "PhalanxCheckpoint", "PhalanxElastic", "PhalanxMPI", "PhalanxTelemetry", "PhalanxPrometheus",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Examples/TrainerKit"
        ),
        .executableTarget(
            name: "DigitsMLP", dependencies: ["Phalanx", "TrainerKit", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Examples/DigitsMLP", exclude: ["README.md"]),
        .executableTarget(
            name: "DigitsCNN", dependencies: ["Phalanx", "TrainerKit", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Examples/DigitsCNN", exclude: ["README.md"]),
        .executableTarget(
            name: "TinyGPT", dependencies: ["Phalanx", "TrainerKit", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Examples/TinyGPT", exclude: ["README.md"]),
        .executableTarget(
            name: "MNISTMLP", dependencies: ["Phalanx", "TrainerKit", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Examples/MNISTMLP", exclude: ["README.md"]),
        .executableTarget(
            name: "SyntheticMLP", dependencies: ["Phalanx", "TrainerKit", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Examples/SyntheticMLP", exclude: ["README.md"]),
        .executableTarget(name: "QuickStart", dependencies: ["Phalanx", "PhalanxElastic"], path: "Examples/QuickStart"),
        .executableTarget(
            name: "phalanx-run",
            dependencies: [
                "Phalanx", "PhalanxElastic", "PhalanxEtcd", "PhalanxTelemetry", "PhalanxPrometheus", "PhalanxTCP", .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),

        // Tests.
        .testTarget(
            name: "PhalanxTensorTests",
            dependencies: ["PhalanxTensor"],
            resources: [.copy("Resources/golden_tensor.json")]
        ),
        .testTarget(
            name: "PhalanxNNTests",
            dependencies: ["PhalanxNN", "PhalanxTensor"],
            resources: [.copy("Resources/golden_optim.json"), .copy("Resources/golden_loss.json"), .copy("Resources/golden_layers.json")]
        ),
        .testTarget(name: "PhalanxDataTests", dependencies: ["PhalanxData", "PhalanxTensor"]),
        .testTarget(name: "CMPITests", dependencies: ["CMPI"]),
        .testTarget(name: "PhalanxCollectivesTests", dependencies: ["PhalanxCollectives", "PhalanxTesting", "PhalanxTensor"]),
        .testTarget(name: "PhalanxTCPTests", dependencies: ["PhalanxTCP", "PhalanxCollectives", "PhalanxTesting"]),
        .testTarget(
            name: "PhalanxTelemetryTests",
            dependencies: ["PhalanxTelemetry", "PhalanxPrometheus", "PhalanxTesting", .product(name: "MetricsTestKit", package: "swift-metrics")]
        ),
        .testTarget(name: "ExamplesTests", dependencies: ["PhalanxTCP", "PhalanxCheckpoint", "PhalanxTesting", "PhalanxTelemetry", "PhalanxEtcd"]),
        .testTarget(name: "PhalanxElasticTests", dependencies: ["PhalanxElastic", "PhalanxTCP", "PhalanxCheckpoint", "PhalanxTesting"]),
        .testTarget(name: "PhalanxEtcdTests", dependencies: ["PhalanxEtcd", "PhalanxElastic", "PhalanxTCP", "PhalanxTesting"]),
        .testTarget(name: "PhalanxMPITests", dependencies: ["PhalanxMPI", "PhalanxTesting"]),
        .testTarget(
            name: "PhalanxCheckpointTests", dependencies: ["PhalanxCheckpoint", "PhalanxTensor", "PhalanxTesting"],
            exclude: ["Resources/make_fixture.py"], resources: [.copy("Resources/python_written.safetensors")]
        ),
    ]
)
