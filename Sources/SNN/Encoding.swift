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
        let out = SharedPointer(frames), src = SharedPointer(UnsafeMutablePointer(mutating: input))
        Parallel.forEach(images) { range in
            for b in range {
                let x = src.base + b * features
                switch encoding {
                case .direct:
                    for t in 0..<timesteps { (out.base + (t * images + b) * features).update(from: x, count: features) }
                case .poisson:
                    var rng = SeededGenerator(seed: seeds[b])
                    for t in 0..<timesteps {
                        let f = out.base + (t * images + b) * features
                        for i in 0..<features {
                            let v = x[i]
                            let r = rng.nextUnitFloat()
                            f[i] = r < abs(v) ? (v > 0 ? 1 : -1) : 0
                        }
                    }
                }
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
        let features = shape.reduce(1, *)
        var frameMajor = [Float](repeating: 0, count: timesteps * images * features)
        frameMajor.withUnsafeMutableBufferPointer {
            encode(input, images: images, features: features, timesteps: timesteps, encoding: encoding, seeds: seeds, into: $0.baseAddress!)
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
