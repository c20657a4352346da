import CSynapse
import TensorKit

/// The membrane recurrence of a spiking layer, run over all steps of a `Frames` batch.
public enum NeuronDynamics {
    /// Replaces input currents with spikes (0/1) in place, following
    /// u_t = leak·u_{t−1} + I_t − θ·o_{t−1}, o_t = [u_t > θ], from u_0 = 0.
    /// Returns each image's spike count.
    ///
    /// Work is split over neurons (the recurrence is independent per neuron); each core walks its
    /// neurons in cache-sized tiles, steps outside and neurons inside (`sn_integrate_fire`).
    public static func fire(_ x: inout Frames, threshold θ: Float, leak: Float) -> [Int] {
        run(&x, constantCurrent: nil, threshold: θ, leak: leak)
    }

    /// The spikes of `timesteps` steps driven by the same current at every step (`current` holds
    /// one step, as direct input's first layer gives), without materialising T copies of it.
    public static func fire(constantCurrent current: Frames, timesteps: Int, threshold θ: Float, leak: Float)
        -> (spikes: Frames, counts: [Int])
    {
        precondition(current.timesteps == 1)
        var spikes = Frames(uninitializedShape: current.shape, timesteps: timesteps, images: current.images)
        let counts = run(&spikes, constantCurrent: current, threshold: θ, leak: leak)
        return (spikes, counts)
    }

    /// Largest H·W that `fireAndPool` handles (one plane's state must fit its stack buffers).
    public static let maxFusedPlane = 4096

    /// Fires a spiking layer over `timesteps` steps and 2×2-average-pools its spikes (stride 2) in
    /// one pass: returns the pooled frames `[C, T·b, H/2, W/2]` and each image's spike count.
    /// `current` holds every step, or one step when the current is the same at every step.
    public static func fireAndPool(_ current: Frames, timesteps: Int, threshold θ: Float, leak: Float)
        -> (pooled: Frames, counts: [Int])
    {
        let (c, h, w, b) = (current.shape[0], current.shape[1], current.shape[2], current.images)
        precondition(h % 2 == 0 && w % 2 == 0 && h * w <= maxFusedPlane)
        precondition(current.timesteps == timesteps || current.timesteps == 1)
        var pooled = Frames(uninitializedShape: [c, h / 2, w / 2], timesteps: timesteps, images: b)
        var partial = [Int64](repeating: 0, count: Parallel.cores * b)
        let constant: Int32 = current.timesteps == 1 && timesteps > 1 ? 1 : 0
        current.scalars.withUnsafeBufferPointer { src in
            pooled.scalars.withUnsafeMutableBufferPointer { dst in
                partial.withUnsafeMutableBufferPointer { pc in
                    let x = SharedPointer(UnsafeMutablePointer(mutating: src.baseAddress!)), y = SharedPointer(dst.baseAddress!)
                    let counts = SharedPointer(pc.baseAddress!)
                    Parallel.forEachChunk(c * b, grain: 8) { chunk, planes in
                        sn_integrate_fire_pool(
                            x.base, constant, Int64(b), Int64(timesteps), Int64(h), Int64(w),
                            Int64(planes.lowerBound), Int64(planes.count), θ, leak, y.base,
                            counts.base + chunk * b)
                    }
                }
            }
        }
        var counts = [Int](repeating: 0, count: b)
        for k in 0..<Parallel.cores {
            for i in 0..<b { counts[i] += Int(partial[k * b + i]) }
        }
        return (pooled, counts)
    }

    static func run(_ x: inout Frames, constantCurrent: Frames?, threshold θ: Float, leak: Float) -> [Int] {
        let (groups, t, l, b) = (x.groups, x.timesteps, x.blockLength, x.images)
        let perImage = x.perImage
        let total = groups * l
        var partial = [Int64](repeating: 0, count: Parallel.cores * b)
        (constantCurrent?.scalars ?? []).withUnsafeBufferPointer { cur in
            let current = constantCurrent == nil ? nil : SharedPointer(UnsafeMutablePointer(mutating: cur.baseAddress!))
            x.scalars.withUnsafeMutableBufferPointer { buf in
                let frames = SharedPointer(buf.baseAddress!)
                partial.withUnsafeMutableBufferPointer { pc in
                    let counts = SharedPointer(pc.baseAddress!)
                    Parallel.forEachChunk(total, grain: 4096) { chunk, range in
                        sn_integrate_fire(
                            frames.base, current?.base, Int64(groups), Int64(t), Int64(l),
                            Int64(range.lowerBound), Int64(range.count), θ, leak, Int64(perImage),
                            counts.base + chunk * b)
                    }
                }
            }
        }
        var counts = [Int](repeating: 0, count: b)
        for c in 0..<Parallel.cores {
            for i in 0..<b { counts[i] += Int(partial[c * b + i]) }
        }
        return counts
    }
}
