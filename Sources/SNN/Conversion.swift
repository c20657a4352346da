import Foundation
import Imaging
import TensorKit

/// ANN → SNN conversion by threshold balancing (Sengupta et al. 2019, as used by Rathi et al. 2020).
///
/// Spiking layers are calibrated one at a time, in order. For layer k the SNN is simulated on
/// calibration images with layers 0..<k already converted, and θ_k is set from the input current
/// that layer k receives: its maximum over all neurons, steps and images (or a percentile of the
/// positive currents, which ignores rare outliers), times `scale`. Balancing inside the simulation
/// rather than on ANN activations accounts for how the earlier spiking layers actually behave.
/// The paper scales the maxima by 0.7: lower thresholds make neurons fire sooner, trading some
/// precision at large T for much better accuracy at small T.
public struct Converter {
    public struct Configuration: Sendable {
        /// Multiplier on the balanced threshold (the paper's scaling factor).
        public var scale: Float = 0.7
        /// Percentile (0–100] of positive currents instead of the maximum; nil = maximum.
        public var percentile: Float? = nil
        /// Images the thresholds are measured on.
        public var calibrationImages: Int = 512
        /// Steps simulated while measuring.
        public var calibrationTimesteps: Int = 64
        /// Default and maximum time steps written into the converted model.
        public var defaultTimesteps: Int = 32
        public var maxTimesteps: Int = 512
        public var leak: Float = 1
        /// Membrane potential before the first step as a fraction of θ; nil is 0 (the paper's).
        /// Calibration simulates with it, so thresholds are balanced for the model as it will run.
        public var initialMembrane: Float? = nil
        /// Take each threshold from the clip λ of the layer's `qcfs` activation instead of
        /// balancing on currents (needs an ANN trained with `qcfs`; `scale` is not applied).
        public var thresholdsFromClips = false
        public var encoding: SNNConfig.Encoding = .poisson
        public var seed: UInt64 = 0
        public init() {}
    }

    public static func convert(
        _ ann: Model, calibration: ImageSet, configuration c: Configuration,
        log: (String) -> Void = { _ in }
    ) throws -> Model {
        if c.thresholdsFromClips { return try convertFromClips(ann, configuration: c) }
        // Without calibration every threshold falls to its floor and the model is useless.
        guard c.calibrationImages >= 1, c.calibrationTimesteps >= 1, c.scale > 0, calibration.count >= 1 else {
            throw ModelError("conversion needs calibration: at least one image and one time step, and a positive scale")
        }
        var folded = try foldBatchNorm(ann)
        let neuronLayers = folded.description.layers.neuronLayerCount
        guard !folded.description.layers.containsKind(.maxpool) else {
            throw ModelError("cannot convert max pooling to spikes; use average pooling (avgpool)")
        }
        var thresholds = [Float](repeating: 1, count: neuronLayers)
        var snn = SNNConfig(
            thresholds: thresholds, leak: c.leak, encoding: c.encoding, defaultTimesteps: c.defaultTimesteps,
            maxTimesteps: c.maxTimesteps,
            conversion: ConversionSettings(
                scale: c.scale, percentile: c.percentile, calibrationImages: c.calibrationImages,
                calibrationTimesteps: c.calibrationTimesteps))
        snn.initialMembrane = c.initialMembrane
        folded.description.snn = snn
        // With biases (batch norm folds into them), a spike must stand for the activation it
        // replaces: a layer's current W·o + b mixes spikes with a bias in the ANN's units, so each
        // spike carries its layer's threshold (the activation scale θ was balanced to). Without
        // biases, unit spikes and amplitudes θ give the same spike trains (the IF recurrence scales
        // with its current and threshold), so bias-free models keep unit spikes.
        let carriesUnits = folded.tensors.keys.contains { $0.hasSuffix(".bias") }
        var engine = try SpikingEngine(model: folded)
        let count = min(c.calibrationImages, calibration.count)
        var rng = SeededGenerator(seed: c.seed)
        let (input, _) = calibration.batch(0..<count, generator: &rng)
        for k in 0..<neuronLayers {
            var maximum: Float = 0
            var samples: [Float] = []
            let observer: SpikingEngine.CurrentObserver = { layer, current in
                guard layer == k else { return }
                for v in current where v > maximum { maximum = v }
                if c.percentile != nil {
                    let step = max(1, current.count / 400_000)
                    for i in Swift.stride(from: 0, to: current.count, by: step) where current[i] > 0 { samples.append(current[i]) }
                }
            }
            let seeds = (0..<count).map { UInt64($0) &+ c.seed }
            var options = SpikingEngine.Options(timesteps: c.calibrationTimesteps, seeds: seeds, thresholds: thresholds)
            options.spikeAmplitudes = carriesUnits ? thresholds : nil
            _ = engine.run(input, options: options, stopAfterNeuron: k, observe: observer)
            var level = maximum
            if let p = c.percentile, !samples.isEmpty {
                samples.sort()
                level = samples[min(samples.count - 1, Int(Float(samples.count - 1) * p / 100))]
            }
            // A layer that never receives positive current would get θ = 0 and fire constantly.
            thresholds[k] = max(level * c.scale, 1e-3)
            log(String(format: "spiking layer %d: max current %.4f, threshold %.4f", k, maximum, thresholds[k]))
        }
        snn.thresholds = thresholds
        if carriesUnits { snn.spikeAmplitudes = thresholds }
        folded.description.snn = snn
        try folded.validate()
        return folded
    }

    /// QCFS conversion (Bu et al., ICLR 2022): θ_k = λ_k, the clip of spiking layer k's activation,
    /// with the membranes starting at θ/2 unless the configuration says otherwise — over T = L steps
    /// of a constant current the spike count N then gives N·θ/T = the ANN's rounded activation.
    /// A spike of layer k stands for θ_k (`spike_amplitudes`), as the activation it replaces ranges
    /// up to λ_k; the weights stay the ANN's.
    static func convertFromClips(_ ann: Model, configuration c: Configuration) throws -> Model {
        var folded = try foldBatchNorm(ann)
        guard let clips = try folded.compiledLayers().clips else {
            throw ModelError("thresholds from clips need every activation to be qcfs (train with --qcfs-levels)")
        }
        var snn = SNNConfig(
            thresholds: clips, leak: c.leak, encoding: c.encoding, defaultTimesteps: c.defaultTimesteps, maxTimesteps: c.maxTimesteps)
        snn.initialMembrane = c.initialMembrane ?? 0.5
        snn.spikeAmplitudes = clips
        folded.description.snn = snn
        try folded.validate()
        return folded
    }

    /// Folds each batch norm into the convolution before it: with σ = √(var + ε),
    /// W' = W·γ/σ per output channel and b' = β + (b − μ)·γ/σ. The bias then enters the SNN as a
    /// constant input current.
    public static func foldBatchNorm(_ model: Model) throws -> Model {
        var tensors = model.tensors
        // The specs are rewritten; the compiled layers beside them give the typed tensors.
        func fold(_ specs: [LayerSpec], _ layers: [Layer]) throws(ModelError) -> [LayerSpec] {
            var out: [LayerSpec] = []
            var previous: Layer? = nil  // the compiled form of out.last
            for (spec, layer) in zip(specs, layers) {
                switch layer {
                case .residual(let body, let shortcut):
                    var l = spec
                    l.body = try fold(spec.body ?? [], body)
                    l.shortcut = try fold(spec.shortcut ?? [], shortcut)
                    out.append(l)
                    previous = layer
                case .batchNorm(let bn):
                    guard case .convolution(let conv)? = previous, var convSpec = out.last else {
                        throw ModelError("batchnorm \(bn.name) does not follow a convolution; cannot fold it")
                    }
                    let (gamma, beta) = (bn.weight.scalars, bn.bias.scalars)
                    let (mean, variance) = (bn.runningMean.scalars, bn.runningVariance.scalars)
                    var w = conv.weight
                    let oldBias = conv.bias?.scalars ?? [Float](repeating: 0, count: gamma.count)
                    let per = w.count / gamma.count
                    var bias = [Float](repeating: 0, count: gamma.count)
                    for o in 0..<gamma.count {
                        let k = gamma[o] / (variance[o] + ANNRunner.batchNormEpsilon).squareRoot()
                        for i in 0..<per { w.scalars[o * per + i] *= k }
                        bias[o] = beta[o] + (oldBias[o] - mean[o]) * k
                    }
                    tensors[conv.name + ".weight"] = w
                    tensors[conv.name + ".bias"] = Tensor(shape: [gamma.count], scalars: bias)
                    for suffix in ["weight", "bias", "running_mean", "running_var"] { tensors["\(bn.name).\(suffix)"] = nil }
                    convSpec.bias = true
                    out[out.count - 1] = convSpec
                    previous = nil
                default:
                    out.append(spec)
                    previous = layer
                }
            }
            return out
        }
        var description = model.description
        description.layers = try fold(description.layers, try model.compiledLayers())
        return Model(description: description, tensors: tensors)
    }
}
