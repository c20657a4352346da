import ArgumentParser
import Foundation
import NativeBridge
import TensorKit

struct SystemCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "system",
        abstract: "Report the machine, the BLAS kernel in use and its measured sgemm rate.")

    @Flag(help: "Print one JSON object.")
    var json = false

    @Option(help: "Matrix size of the sgemm measurement (n×n×n).")
    var size = 1024

    func run() throws {
        let gflops = SgemmBenchmark.measure(size: size)
        let report: [String: any Sendable] = [
            "blas_core": BLAS.coreName,
            "blas_threads": BLAS.threads,
            "blas_kernel_selection": BLASKernelSelection.selection,
            "blas_config": BLAS.config,
            "sgemm_gflops": (gflops * 10).rounded() / 10,
            "sgemm_size": size,
            "cpu_features": CPUFeatures.current.names,
            "cores": Parallel.cores,
            "swift_version": swiftVersion,
        ]
        if json {
            let data = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            for key in report.keys.sorted() { print("\(key): \(report[key]!)") }
        }
    }
}

enum SgemmBenchmark {
    /// Best of several n×n×n sgemm runs, in GFLOP/s (2n³ flops per call).
    static func measure(size n: Int, repeats: Int = 20) -> Double {
        var rng = SeededGenerator(seed: 1)
        let a = (0..<n * n).map { _ in rng.nextUnitFloat() - 0.5 }
        let b = (0..<n * n).map { _ in rng.nextUnitFloat() - 0.5 }
        var c = [Float](repeating: 0, count: n * n)
        var best = Double.infinity
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            c.withUnsafeMutableBufferPointer { cb in
                BLAS.sgemm(m: n, n: n, k: n, a: a, lda: n, b: b, ldb: n, c: cb.baseAddress!, ldc: n)
            }
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return 2 * Double(n * n * n) / best / 1e9
    }
}

/// The compiler version this binary was built with, to the patch level we can tell at compile time.
let swiftVersion: String = {
    #if compiler(>=6.4)
        return "6.4 or newer"
    #elseif compiler(>=6.3.1)
        return "6.3.1"
    #elseif compiler(>=6.3)
        return "6.3"
    #elseif compiler(>=6.2)
        return "6.2"
    #else
        return "6.0 or 6.1"
    #endif
}()
