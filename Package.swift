// swift-tools-version:6.0
import PackageDescription

/// SpikeServe: a REST server for spiking neural networks converted from ANNs (Rathi et al., ICLR 2020).
///
/// Module map (each has its own test target):
/// - `CBLAS`, `CNative`: C bridges (OpenBLAS; libjpeg/libpng decoding with longjmp error handling; CPUID).
/// - `NativeBridge`: Swift face of the bridges: BLAS calls, CPU features, OpenBLAS kernel selection.
/// - `TensorKit`: Float32 NCHW tensors, kernels with backward passes, optimizers.
/// - `Imaging`: image decoding, conversion to model input, ImageFolder datasets.
/// - `spikeserve`: the command-line tool.
let swiftSettings: [SwiftSetting] = []

let package = Package(
    name: "SpikeServe",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "spikeserve", targets: ["spikeserve"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
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
            linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png16")]
        ),
        .target(name: "NativeBridge", dependencies: ["CBLAS", "CNative"], swiftSettings: swiftSettings),
        .target(name: "TensorKit", dependencies: ["NativeBridge"], swiftSettings: swiftSettings),
        .target(name: "Imaging", dependencies: ["CNative", "TensorKit"], swiftSettings: swiftSettings),
        .target(name: "SNN", dependencies: ["TensorKit", "Imaging"], swiftSettings: swiftSettings),
        .executableTarget(
            name: "spikeserve",
            dependencies: [
                "NativeBridge", "TensorKit", "Imaging", "SNN",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "NativeBridgeTests", dependencies: ["NativeBridge"]),
        .testTarget(name: "TensorKitTests", dependencies: ["TensorKit"]),
        .testTarget(name: "SNNTests", dependencies: ["SNN"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging"], resources: [.copy("Fixtures")]),
    ],
    swiftLanguageModes: [.v6]
)
