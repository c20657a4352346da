// swift-tools-version:6.0
import PackageDescription

/// SpikeServe: a REST server for spiking neural networks converted from ANNs (Rathi et al., ICLR 2020).
///
/// Module map (each has its own test target):
/// - `CBLAS`, `CNative`, `CEventLoop`: C bridges (OpenBLAS; libjpeg/libpng decoding with longjmp error handling;
///   CPUID; epoll/eventfd for the HTTP server's I/O loops, inotify for the model store's watcher).
/// - `CSynapse`: the SNN engine's event-driven synaptic kernels (C, one build per instruction set).
/// - `NativeBridge`: Swift face of the bridges: BLAS calls, CPU features, OpenBLAS kernel selection.
/// - `TensorKit`: Float32 NCHW tensors, kernels with backward passes, optimizers.
/// - `Imaging`: image decoding, conversion to model input, ImageFolder datasets.
/// - `HTTPServer`: HTTP/1.1 server on POSIX sockets, epoll loops and Dispatch (no model knowledge); `http-bench` benchmarks it.
/// - `SNN`: the method: model format, ANN training, conversion, the time-batched SNN engine, STDB fine-tuning.
/// - `ModelImport`: ANNs trained elsewhere: ONNX graphs (swift-protobuf) and PyTorch state dicts (safetensors).
/// - `Serving`: the REST API over HTTPServer: model store and versions, dynamic batching, auth, metrics.
/// - `spikeserve`: the command-line tool.
let swiftSettings: [SwiftSetting] = []

let package = Package(
    name: "SpikeServe",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "spikeserve", targets: ["spikeserve"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .target(
            name: "CNative",
            cSettings: [.unsafeFlags(["-O2"])],
            linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png16"), .linkedLibrary("exif"), .linkedLibrary("archive")]
        ),
        .target(name: "CEventLoop"),
        .target(name: "CSynapse", cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "NativeBridge", dependencies: ["CBLAS", "CNative"], swiftSettings: swiftSettings),
        .target(name: "TensorKit", dependencies: ["NativeBridge", "CSynapse"], swiftSettings: swiftSettings),
        .target(name: "Imaging", dependencies: ["CNative", "TensorKit"], swiftSettings: swiftSettings),
        .target(name: "SNN", dependencies: ["TensorKit", "Imaging", "CSynapse"], swiftSettings: swiftSettings),
        .target(
            name: "ModelImport",
            dependencies: ["SNN", "TensorKit", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HTTPServer",
            dependencies: [
                "CEventLoop", .product(name: "Logging", package: "swift-log"),
                .product(name: "HeapModule", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "http-bench",
            dependencies: ["HTTPServer", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Serving",
            dependencies: [
                "SNN", "Imaging", "HTTPServer", "NativeBridge", "ModelImport", "CEventLoop",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "spikeserve",
            dependencies: [
                "NativeBridge", "TensorKit", "Imaging", "SNN", "Serving", "HTTPServer", "ModelImport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "NativeBridgeTests", dependencies: ["NativeBridge"]),
        .testTarget(name: "TensorKitTests", dependencies: ["TensorKit"]),
        .testTarget(name: "SNNTests", dependencies: ["SNN"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ModelImportTests", dependencies: ["ModelImport", "SNN", "Imaging"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging"], resources: [.copy("Fixtures")]),
        .testTarget(name: "HTTPServerTests", dependencies: ["HTTPServer"]),
        .testTarget(name: "ServingTests", dependencies: ["Serving", "SNN", "HTTPServer"], resources: [.copy("Fixtures")]),
    ],
    swiftLanguageModes: [.v6]
)
