import ArgumentParser
import Foundation
import Imaging
import NativeBridge
import SNN
import TensorKit

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print numbers: sgemm and the tensor kernels.")

    @Option(help: "Batch size for the kernel benchmarks.")
    var batch = 64

    @Option(help: "A converted model (directory) to benchmark SNN inference and fine-tuning with.")
    var model: String?

    @Option(help: "ImageFolder to draw benchmark images from (default: random inputs).")
    var data: String?

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
        if let model { try benchModel(model) }
    }

    /// SNN inference at batch 100 and STDB fine-tuning at batch 32, the settings of the PyTorch
    /// baselines quoted in README.
    func benchModel(_ path: String) throws {
        let m = try Model.load(from: path)
        let spec = m.description.inputSpec
        var input = Tensor(shape: [100, spec.channels, spec.height, spec.width])
        var labels = [Int](repeating: 0, count: 100)
        if let data {
            let set = try ImageSet.load(try ImageFolder(root: data).subset(limit: 100), spec: spec)
            var rng = SeededGenerator(seed: 0)
            (input, labels) = set.batch(0..<set.count, generator: &rng)
        } else {
            var rng = SeededGenerator(seed: 0)
            for i in 0..<input.count { input.scalars[i] = 2 * rng.nextUnitFloat() - 0.5 }
        }
        var engine = try SpikingEngine(model: m)
        for t in [4, 8, 16, 32] {
            let seconds = time(repeats: 3) { _ = engine.run(input, options: .init(timesteps: t)) }
            print(String(format: "snn inference %@ T=%2d batch 100: %7.0f images/s", m.description.name, t, 100 / seconds))
        }
        let batch32 = Tensor(shape: [32] + Array(input.shape.dropFirst()), scalars: Array(input.scalars.prefix(32 * spec.count)))
        for (name, surrogate) in [("stdb", Surrogate.default), ("linear", Surrogate.linear(alpha: 0.3))] {
            var net = try STDBNetwork(model: m, surrogate: surrogate)
            for t in [4, 8] {
                var tape = 0
                let seconds = time(repeats: 3) {
                    tape = net.step(batch32, labels: Array(labels.prefix(32)), timesteps: t, seeds: Array(0..<32), dropoutSeed: 1).tapeBytes
                }
                print(String(format: "fine-tuning step (%@) T=%d batch 32: %7.0f images/s (tape %.0f MB)", name, t, 32 / seconds, Double(tape) / 1e6))
            }
        }
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
