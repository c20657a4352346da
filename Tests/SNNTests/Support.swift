import Foundation
import Imaging
import TensorKit

@testable import SNN

func fixturePath(_ name: String) -> String {
    Bundle.module.url(forResource: "Fixtures/" + name, withExtension: nil)!.path
}

func temporaryDirectory(_ tag: String) -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("spikeserve-\(tag)-\(UUID().uuidString.prefix(8))").path
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// A model from explicit layers and tensors, with SNN settings.
func makeModel(
    input: InputDescription, labels: Int, layers: [LayerSpec], tensors: [String: Tensor],
    thresholds: [Float]? = nil, leak: Float = 1, encoding: SNNConfig.Encoding = .direct
) -> Model {
    var d = ModelDescription(name: "test", architecture: "custom", input: input, labels: (0..<labels).map(String.init), layers: layers)
    if let thresholds { d.snn = SNNConfig(thresholds: thresholds, leak: leak, encoding: encoding, defaultTimesteps: 8) }
    return Model(description: d, tensors: tensors)
}

/// Random tensor whose entries are multiples of 1/8 in [−1, 1]: with binary or quarter-valued
/// inputs every partial sum is exact in Float32, so results do not depend on summation order.
func dyadicTensor(_ shape: [Int], seed: UInt64) -> Tensor {
    var rng = SeededGenerator(seed: seed)
    var t = Tensor(shape: shape)
    for i in 0..<t.count { t.scalars[i] = Float(Int(rng.next() % 17) - 8) / 8 }
    return t
}

/// A plain per-step simulation, written independently of the engine: loops over t, then over
/// layers, with explicit membrane arrays, direct convolution loops and NCHW storage throughout.
struct PerStepReference {
    let model: Model

    func run(_ input: Tensor, timesteps: Int, seeds: [UInt64]) -> (potentials: [[Float]], spikes: [Int]) {
        let d = model.description
        let snn = d.snn!
        let n = input.shape[0]
        let features = input.count / n
        // Same encoder as the engine, so both see identical input spikes.
        var encoded = [Float](repeating: 0, count: timesteps * n * features)
        input.withUnsafePointer { x in
            encoded.withUnsafeMutableBufferPointer {
                InputEncoder.encode(
                    x, images: n, features: features, timesteps: timesteps, encoding: snn.encoding,
                    seeds: seeds, into: $0.baseAddress!)
            }
        }
        var potentials = [[Float]](repeating: [Float](repeating: 0, count: d.labels.count), count: n)
        var spikes = [Int](repeating: 0, count: n)
        for i in 0..<n {
            var membranes: [Int: [Float]] = [:]
            var resets: [Int: [Float]] = [:]
            for t in 0..<timesteps {
                let start = (t * n + i) * features
                var x = Array(encoded[start..<start + features])
                var shape = [d.input.channels, d.input.height, d.input.width]
                var neuron = 0
                for layer in d.layers {
                    switch layer.type {
                    case .conv2d:
                        (x, shape) = conv(x, shape, layer)
                    case .linear:
                        let w = model.tensors["\(layer.name!).weight"]!
                        let outF = layer.outFeatures!
                        let b = model.tensors["\(layer.name!).bias"]?.scalars
                        x = (0..<outF).map { o in (0..<x.count).reduce(b?[o] ?? 0) { $0 + w.scalars[o * x.count + $1] * x[$1] } }
                        shape = [outF]
                    case .relu:
                        let theta = snn.thresholds[neuron]
                        var u = membranes[neuron] ?? [Float](repeating: (snn.initialMembrane ?? 0) * theta, count: x.count)
                        var r = resets[neuron] ?? [Float](repeating: 0, count: x.count)
                        for j in 0..<x.count {
                            u[j] = snn.leak * u[j] + x[j] - r[j]
                            x[j] = u[j] > theta ? 1 : 0
                            r[j] = theta * x[j]
                            spikes[i] += Int(x[j])
                        }
                        membranes[neuron] = u
                        resets[neuron] = r
                        neuron += 1
                    case .avgpool:
                        let (c, h, w) = (shape[0], shape[1], shape[2])
                        var y = [Float](repeating: 0, count: c * (h / 2) * (w / 2))
                        for ch in 0..<c {
                            for oy in 0..<h / 2 {
                                for ox in 0..<w / 2 {
                                    var s: Float = 0
                                    for dy in 0..<2 { for dx in 0..<2 { s += x[(ch * h + 2 * oy + dy) * w + 2 * ox + dx] } }
                                    y[(ch * (h / 2) + oy) * (w / 2) + ox] = s / 4
                                }
                            }
                        }
                        x = y
                        shape = [c, h / 2, w / 2]
                    case .flatten:
                        shape = [x.count]
                    default:
                        break
                    }
                }
                for k in 0..<x.count { potentials[i][k] += x[k] }
            }
        }
        return (potentials, spikes)
    }

    func conv(_ x: [Float], _ shape: [Int], _ layer: LayerSpec) -> ([Float], [Int]) {
        let g = layer.convGeometry!
        let (h, w) = (shape[1], shape[2])
        let (oh, ow) = g.outputSize(height: h, width: w)
        let wt = model.tensors["\(layer.name!).weight"]!
        let bias = model.tensors["\(layer.name!).bias"]?.scalars
        var y = [Float](repeating: 0, count: g.outChannels * oh * ow)
        for o in 0..<g.outChannels {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var s: Float = bias?[o] ?? 0
                    for c in 0..<g.inChannels {
                        for ky in 0..<g.kernelHeight {
                            for kx in 0..<g.kernelWidth {
                                let iy = oy * g.stride - g.padding + ky, ix = ox * g.stride - g.padding + kx
                                guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                                s += wt[o, c, ky, kx] * x[(c * h + iy) * w + ix]
                            }
                        }
                    }
                    y[(o * oh + oy) * ow + ox] = s
                }
            }
        }
        return (y, [g.outChannels, oh, ow])
    }
}
