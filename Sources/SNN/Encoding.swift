import TensorKit

/// Turns a normalised input batch into per-step input frames.
///
/// Poisson (the paper's rate coding, signed as in the reference implementation): at every step,
/// input element x fires sign(x) with probability min(1, |x|). Each image draws from its own
/// generator seeded by its own seed, so a request's result does not depend on what else shared
/// its batch. Direct: the analog value x is the input current at every step.
public enum InputEncoder {
    /// Writes frames for steps `0..<timesteps` of `images` images into `frames`, laid out
    /// `[timesteps, images, features]` (time-major, so each step's frames are contiguous).
    public static func encode(
        _ input: UnsafePointer<Float>, images: Int, features: Int, timesteps: Int,
        encoding: SNNConfig.Encoding, seeds: [UInt64], into frames: UnsafeMutablePointer<Float>
    ) {
        var generators = seeds.map { SeededGenerator(seed: $0) }
        encode(input, images: images, features: features, timesteps: timesteps, encoding: encoding, generators: &generators, into: frames)
    }

    /// `encode` continuing each image's generator (one per image): a run split into several
    /// calls draws the same spikes as one call over all its steps.
    public static func encode(
        _ input: UnsafePointer<Float>, images: Int, features: Int, timesteps: Int,
        encoding: SNNConfig.Encoding, generators: inout [SeededGenerator], into frames: UnsafeMutablePointer<Float>
    ) {
        let out = SharedPointer(frames), src = SharedPointer(UnsafeMutablePointer(mutating: input))
        generators.withUnsafeMutableBufferPointer { g in
            let rngs = SharedPointer(g.baseAddress!)
            Parallel.forEach(images) { range in
                for b in range {
                    let x = src.base + b * features
                    switch encoding {
                    case .direct:
                        for t in 0..<timesteps { (out.base + (t * images + b) * features).update(from: x, count: features) }
                    case .poisson:
                        encodePoisson(x, features: features, timesteps: timesteps, image: b, images: images, rng: &rngs.base[b], into: out.base)
                    }
                }
            }
        }
    }

    static func encodePoisson(
        _ x: UnsafeMutablePointer<Float>, features: Int, timesteps: Int, image b: Int, images: Int, rng: inout SeededGenerator,
        into out: UnsafeMutablePointer<Float>
    ) {
        for t in 0..<timesteps {
            let f = out + (t * images + b) * features
            for i in 0..<features {
                let v = x[i]
                let r = rng.nextUnitFloat()
                f[i] = r < abs(v) ? (v > 0 ? 1 : -1) : 0
            }
        }
    }
}

extension InputEncoder {
    /// Encodes `images` normalised inputs of `shape` into T·b frames in the engine's layout, and
    /// counts each image's non-zero input events (for synaptic-operation accounting).
    public static func frames(
        _ input: UnsafePointer<Float>, shape: FeatureShape, images: Int, timesteps: Int,
        encoding: SNNConfig.Encoding, seeds: [UInt64], events: inout [Int]
    ) -> Frames {
        var generators = seeds.map { SeededGenerator(seed: $0) }
        return frames(input, shape: shape, images: images, timesteps: timesteps, encoding: encoding, generators: &generators, events: &events)
    }

    /// `frames` continuing each image's generator.
    public static func frames(
        _ input: UnsafePointer<Float>, shape: FeatureShape, images: Int, timesteps: Int,
        encoding: SNNConfig.Encoding, generators: inout [SeededGenerator], events: inout [Int]
    ) -> Frames {
        let features = shape.reduce(1, *)
        var frameMajor = [Float](repeating: 0, count: timesteps * images * features)
        frameMajor.withUnsafeMutableBufferPointer {
            encode(
                input, images: images, features: features, timesteps: timesteps, encoding: encoding, generators: &generators,
                into: $0.baseAddress!)
        }
        for i in 0..<images {
            var count = 0
            for t in 0..<timesteps {
                let base = (t * images + i) * features
                for j in 0..<features where frameMajor[base + j] != 0 { count += 1 }
            }
            events[i] = count
        }
        let flat = Frames(scalars: frameMajor, shape: [features], timesteps: timesteps, images: images)
        return shape.count == 3 ? flat.unflattened(to: shape) : flat
    }
}
