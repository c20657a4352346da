import TensorKit

/// The membrane recurrence of a spiking layer, run over all steps of a `Frames` batch.
public enum NeuronDynamics {
    /// Replaces input currents with spikes (0/1) in place, following
    /// u_t = leak·u_{t−1} + I_t − θ·o_{t−1}, o_t = [u_t > θ], from u_0 = 0.
    /// Returns each image's spike count.
    ///
    /// Work is split over neurons (the recurrence is independent per neuron); within a chunk the
    /// loop runs over t outside and neurons inside, so the inner loop is a contiguous,
    /// vectorisable sweep over one block.
    public static func fire(_ x: inout Frames, threshold θ: Float, leak: Float) -> [Int] {
        let (groups, t, l, b) = (x.groups, x.timesteps, x.blockLength, x.images)
        let perImage = x.perImage
        let total = groups * l
        var partial = [Int](repeating: 0, count: Parallel.cores * b)
        x.scalars.withUnsafeMutableBufferPointer { buf in
            let frames = SharedPointer(buf.baseAddress!)
            partial.withUnsafeMutableBufferPointer { pc in
                let counts = SharedPointer(pc.baseAddress!)
                Parallel.forEachChunk(total, grain: 4096) { chunk, range in
                    var u = [Float](repeating: 0, count: range.count)
                    var reset = [Float](repeating: 0, count: range.count)
                    var spikes = [Float](repeating: 0, count: range.count)
                    // Split the chunk at group boundaries: inside a group the neuron index j maps
                    // to offset (g·T + t)·L + j.
                    var n = range.lowerBound
                    while n < range.upperBound {
                        let g = n / l, j0 = n % l
                        let len = min(range.upperBound - n, l - j0)
                        let off = n - range.lowerBound
                        for step in 0..<t {
                            let f = frames.base + (g * t + step) * l + j0
                            u.withUnsafeMutableBufferPointer { ub in
                                reset.withUnsafeMutableBufferPointer { rb in
                                    spikes.withUnsafeMutableBufferPointer { sb in
                                        let u = ub.baseAddress! + off, r = rb.baseAddress! + off, s = sb.baseAddress! + off
                                        for j in 0..<len {
                                            let v = leak * u[j] + f[j] - r[j]
                                            let o: Float = v > θ ? 1 : 0
                                            u[j] = v
                                            r[j] = θ * o
                                            f[j] = o
                                            s[j] += o
                                        }
                                    }
                                }
                            }
                        }
                        // Per-image totals: neuron j of a block belongs to image j / perImage.
                        for j in 0..<len {
                            counts.base[chunk * b + (j0 + j) / perImage] += Int(spikes[off + j])
                        }
                        n += len
                    }
                }
            }
        }
        var counts = [Int](repeating: 0, count: b)
        for c in 0..<Parallel.cores {
            for i in 0..<b { counts[i] += partial[c * b + i] }
        }
        return counts
    }
}
