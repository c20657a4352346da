import ArgumentParser
import Foundation
import NativeBridge
import TensorKit

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print numbers: sgemm and the tensor kernels.")

    @Option(help: "Batch size for the kernel benchmarks.")
    var batch = 64

    func run() throws {
        print("blas_core: \(BLAS.coreName) (\(BLASKernelSelection.selection)), threads \(BLAS.threads)")
        for n in [256, 512, 1024] {
            print(String(format: "sgemm %4d³: %7.1f GFLOP/s", n, SgemmBenchmark.measure(size: n)))
        }
        var rng = SeededGenerator(seed: 2)
        var ws = Workspace()
        let g = Conv2DGeometry(inChannels: 32, outChannels: 64, kernel: 3, padding: 1)
        let x = Tensor(shape: [batch, 32, 14, 14], scalars: (0..<batch * 32 * 196).map { _ in rng.nextUnitFloat() })
        let w = Tensor.kaimingNormal(shape: [64, 32, 3, 3], fanIn: 288, generator: &rng)
        let flops = 2.0 * Double(batch * 64 * 196 * 288)
        let fwd = time(repeats: 5) { _ = conv2d(x, weight: w, geometry: g, workspace: &ws) }
        let y = conv2d(x, weight: w, geometry: g, workspace: &ws)
        let bwd = time(repeats: 5) { _ = conv2dBackward(x, weight: w, gradOutput: y, geometry: g, workspace: &ws) }
        print(String(format: "conv2d 32→64 3×3 on %d×14×14: forward %.2f ms (%.1f GFLOP/s), backward %.2f ms (%.1f GFLOP/s)",
                     batch, fwd * 1e3, flops / fwd / 1e9, bwd * 1e3, 2 * flops / bwd / 1e9))
    }

    func time(repeats: Int, _ body: () -> Void) -> Double {
        body()
        var best = Double.infinity
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return best
    }
}
