import ArgumentParser
import Foundation
import Imaging
import NativeBridge
import SNN
import TensorKit

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print numbers: SNN inference and fine-tuning of a model, or the tensor kernels.",
        discussion: """
            With a model: images/s, ms per image, effective GFLOP/s (the dense computation's FLOPs over the time \
            taken), synaptic operations/s, the path each weighted layer took with its input event rate, and the \
            peak resident memory. Without one: sgemm and conv2d kernel rates. Each figure is the best of --repeats \
            runs after one warm-up run.
            """)

    @Argument(help: "A converted model (a version directory, or a served model's root).")
    var modelPath: String?

    @Option(name: .customLong("model"), help: "Same as the MODEL argument.")
    var modelOption: String?

    @Option(help: "ImageFolder to draw benchmark images from (default: random inputs, whose spike rates differ from real images').")
    var data: String?

    @Option(parsing: .upToNextOption, help: "Time-step budgets to measure.")
    var timesteps: [Int] = [4, 8, 16, 32]

    @Option(help: "Images per engine call (inference), or per batch for the kernel benchmarks.")
    var batch = 100

    @Flag(help: "Also measure the STDB fine-tuning step (forward and backward).")
    var finetune = false

    @Option(help: "Batch size of the fine-tuning step.")
    var finetuneBatch = 32

    @Option(help: "Synaptic path of the weighted layers: automatic, dense or event-driven.")
    var path: PathChoice = .automatic

    @Option(help: "Timed runs per figure (the best is reported).")
    var repeats = 5

    @Flag(help: "Print one JSON object.")
    var json = false

    @OptionGroup var exit: ExitOptions

    @Option(help: "With --adaptive: how settled images leave the batch, shrink (drop them) or mask (zero them, to measure against).")
    var exitRemoval: SpikingEngine.ExitRemoval = .shrink

    @Flag(help: "Without a model: time each weighted-layer kind on both paths against the input event rate.")
    var crossover = false

    enum PathChoice: String, ExpressibleByArgument, CaseIterable {
        case automatic, dense, eventDriven = "event-driven"
        var engine: SpikingEngine.SynapticPath {
            switch self {
            case .automatic: .automatic
            case .dense: .dense
            case .eventDriven: .eventDriven
            }
        }
    }

    func validate() throws {
        try exit.validate()
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        guard finetuneBatch >= 1 else { throw ValidationError("--finetune-batch must be at least 1") }
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
        guard timesteps.allSatisfy({ (1...4096).contains($0) }) else { throw ValidationError("--timesteps must be in 1...4096") }
    }

    func run() throws {
        guard let model = modelPath ?? modelOption else { return crossover ? benchCrossover() : benchKernels() }
        let report = try benchModel(model)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            report.printText()
        }
    }

    func benchKernels() {
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
        let fwd = time { _ = conv2d(x, weight: w, geometry: g, workspace: &ws) }
        let y = conv2d(x, weight: w, geometry: g, workspace: &ws)
        let bwd = time { _ = conv2dBackward(x, weight: w, gradOutput: y, geometry: g, workspace: &ws) }
        print(
            String(
                format: "conv2d 32→64 3×3 on %d×14×14: forward %.2f ms (%.1f GFLOP/s), backward %.2f ms (%.1f GFLOP/s)",
                batch, fwd * 1e3, flops / fwd / 1e9, bwd * 1e3, 2 * flops / bwd / 1e9))
    }

    /// Dense against event-driven time for mnist-cnn's layer shapes (conv 32→64 3×3 on 14×14 maps,
    /// linear 3136→256) over `batch`·4 frames, at input event rates from 1% to 100%. Inputs are
    /// average-pooled spikes (values k/4), as those layers receive them.
    func benchCrossover() {
        let frames = batch * 4
        var rng = SeededGenerator(seed: 3)
        let g = Conv2DGeometry(inChannels: 32, outChannels: 64, kernel: 3, padding: 1)
        let convW = Tensor.kaimingNormal(shape: [64, 32, 3, 3], fanIn: 288, generator: &rng)
        let linW = Tensor.kaimingNormal(shape: [256, 3136], fanIn: 3136, generator: &rng)
        let convT = eventDrivenWeights(convW), linT = eventDrivenWeights(linW)
        var ws = Workspace()
        print("frames \(frames) (T = 4 × batch \(batch)); ms per layer call, best of \(repeats)")
        print("| input event rate | conv 32→64 3×3, 14×14: dense | event-driven | linear 3136→256: dense | event-driven |")
        print("| --- | --- | --- | --- | --- |")
        for rate in [0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0] {
            let x = (0..<(32 * 196 * frames)).map { _ in
                Double(rng.nextUnitFloat()) < rate ? Float(1 + rng.next() % 4) / 4 : 0
            }
            var out = [Float](repeating: 0, count: 64 * 196 * frames)
            var lin = [Float](repeating: 0, count: 256 * frames)
            let (cd, ce, ld, le) = x.withUnsafeBufferPointer { xp in
                let xb = xp.baseAddress!
                let cd = time {
                    convW.withUnsafePointer { w in
                        conv2dChannelMajor(xb, frames: frames, height: 14, width: 14, weight: w, bias: nil, geometry: g, output: &out, workspace: &ws)
                    }
                }
                let ce = time {
                    eventConv2dChannelMajor(
                        xb, frames: frames, height: 14, width: 14, weightT: convT, bias: nil,
                        geometry: g, output: &out)
                }
                let flat = Tensor(shape: [frames, 3136], scalars: Array(xp.prefix(3136 * frames)))
                let ld = time { _ = linear(flat, weight: linW) }
                let le = time {
                    eventLinear(
                        xb, frames: frames, groups: 1, perGroup: 3136, weightT: linT, bias: nil,
                        outFeatures: 256, output: &lin)
                }
                return (cd, ce, ld, le)
            }
            print(String(format: "| %.2f | %.2f | %.2f | %.2f | %.2f |", rate, cd * 1e3, ce * 1e3, ld * 1e3, le * 1e3))
        }
    }

    func benchModel(_ path: String) throws -> BenchReport {
        let m = try Model.load(from: path)
        for t in timesteps { try OptionRange.memory(m, timesteps: t) }
        let spec = m.description.inputSpec
        let (input, labels) = try images(spec: spec, count: max(batch, finetune ? finetuneBatch : 0))
        let inferenceInput = Tensor(
            shape: [batch, spec.channels, spec.height, spec.width],
            scalars: Array(input.scalars.prefix(batch * spec.count)))
        var report = BenchReport(
            model: m.description.name, blasCore: BLAS.coreName, cores: Parallel.cores, batch: batch,
            data: data ?? "random", path: self.path.rawValue)
        var engine = try SpikingEngine(model: m)
        let policy = try exit.policy(for: m)
        report.exitPolicy = policy
        for t in timesteps {
            var result: SpikingEngine.Result?
            let seconds = time {
                var options = SpikingEngine.Options(timesteps: t, synapticPath: self.path.engine, exit: policy)
                options.exitRemoval = exitRemoval
                result = engine.run(inferenceInput, options: options)
            }
            let r = result!
            let dense = r.weightedLayers.reduce(0) { $0 + $1.denseMACs }
            let ops = r.synapticOps.reduce(0, +)
            report.inference.append(
                .init(
                    timesteps: t, imagesPerSecond: Double(batch) / seconds, msPerImage: seconds * 1e3 / Double(batch),
                    effectiveGFLOPs: 2 * Double(dense) / seconds / 1e9, synapticOpsPerSecond: Double(ops) / seconds,
                    meanTimestepsUsed: Double(r.timestepsUsed.reduce(0, +)) / Double(max(1, batch)),
                    layers: r.weightedLayers.map {
                        .init(
                            name: $0.name, path: $0.path == .eventDriven ? "event-driven" : "dense",
                            eventRate: $0.eventRate)
                    }))
        }
        if finetune {
            let x = Tensor(
                shape: [finetuneBatch, spec.channels, spec.height, spec.width],
                scalars: Array(input.scalars.prefix(finetuneBatch * spec.count)))
            var net = try STDBNetwork(model: m, surrogate: .default)
            for t in timesteps {
                var tape = 0
                let seconds = time {
                    tape =
                        net.step(
                            x, labels: Array(labels.prefix(finetuneBatch)), timesteps: t,
                            seeds: (0..<finetuneBatch).map { UInt64($0) }, dropoutSeed: 1
                        ).tapeBytes
                }
                report.finetuning.append(
                    .init(
                        timesteps: t, batch: finetuneBatch, surrogate: "stdb",
                        imagesPerSecond: Double(finetuneBatch) / seconds, tapeMB: Double(tape) / 1e6))
            }
        }
        report.peakRSSMB = Double(peakResidentBytes()) / 1e6
        return report
    }

    /// Benchmark images: the first of `--data` (in folder order), or seeded random values.
    func images(spec: InputSpec, count: Int) throws -> (Tensor, [Int]) {
        if let data {
            let set = try ImageSet.load(try ImageFolder(root: data).subset(limit: count), spec: spec)
            guard set.count >= count else { throw ValidationError("\(data) has \(set.count) images; the benchmark needs \(count)") }
            var rng = SeededGenerator(seed: 0)
            return set.batch(0..<count, generator: &rng)
        }
        var rng = SeededGenerator(seed: 0)
        var x = Tensor(shape: [count, spec.channels, spec.height, spec.width])
        for i in 0..<x.count { x.scalars[i] = 2 * rng.nextUnitFloat() - 0.5 }
        return (x, [Int](repeating: 0, count: count))
    }

    func time(_ body: () -> Void) -> Double {
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

/// What `spikeserve bench MODEL` measures (also its `--json` form).
struct BenchReport: Encodable {
    struct Layer: Encodable {
        var name: String
        var path: String
        /// Fraction of the layer's input values that were non-zero.
        var eventRate: Double
    }

    struct Inference: Encodable {
        var timesteps: Int
        var imagesPerSecond: Double
        var msPerImage: Double
        /// 2 × the dense multiply-accumulates of the weighted layers, per second of simulation.
        var effectiveGFLOPs: Double
        /// Input events × fan-out (the engine's `synapticOps`), per second.
        var synapticOpsPerSecond: Double
        /// Steps per image (the budget, unless adaptive steps stopped images early).
        var meanTimestepsUsed: Double
        var layers: [Layer]
    }

    struct Finetuning: Encodable {
        var timesteps: Int
        var batch: Int
        var surrogate: String
        var imagesPerSecond: Double
        var tapeMB: Double
    }

    var model: String
    var blasCore: String
    var cores: Int
    var batch: Int
    var data: String
    var path: String
    /// The adaptive time-step policy used, if any.
    var exitPolicy: ExitPolicy?
    var inference: [Inference] = []
    var finetuning: [Finetuning] = []
    var peakRSSMB = 0.0

    func printText() {
        print("model \(model), batch \(batch), data \(data), path \(path), BLAS \(blasCore), \(cores) cores")
        if let p = exitPolicy {
            print(
                String(
                    format: "adaptive time steps: %@ threshold %.4g, from step %d every %d", p.rule.rawValue, p.threshold, p.minTimesteps, p.interval)
            )
        }
        for r in inference {
            print(
                String(
                    format:
                        "snn inference T=%3d batch %d: %8.0f images/s  %7.3f ms/image  %6.1f GFLOP/s effective  %.3g synaptic ops/s  %.2f steps/image",
                    r.timesteps, batch, r.imagesPerSecond, r.msPerImage, r.effectiveGFLOPs, r.synapticOpsPerSecond, r.meanTimestepsUsed))
            print(
                "  layers: "
                    + r.layers.map { String(format: "%@ %@ (event rate %.3f)", $0.name, $0.path, $0.eventRate) }
                    .joined(separator: ", "))
        }
        for f in finetuning {
            print(
                String(
                    format: "fine-tuning step (%@) T=%d batch %d: %7.0f images/s (tape %.0f MB)",
                    f.surrogate, f.timesteps, f.batch, f.imagesPerSecond, f.tapeMB))
        }
        print(String(format: "peak RSS %.0f MB", peakRSSMB))
    }
}

/// Peak resident set size of this process (getrusage's ru_maxrss, KiB on Linux).
func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_maxrss * 1024
}

extension SpikingEngine.ExitRemoval: ExpressibleByArgument {}
