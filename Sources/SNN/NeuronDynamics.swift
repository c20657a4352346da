import CSynapse
import TensorKit

/// The state a spiking layer carries from one run of steps to the next (adaptive time steps run
/// the simulation a few steps at a time): each neuron's membrane potential and last spike, laid out
/// like one step of the layer's frames (`[groups][images·perImage]`).
public struct NeuronState: Sendable, Equatable {
    public var membrane: [Float]
    public var spikes: [Float]
    /// Channel groups of the layout (C for maps, 1 for flat features).
    public var groups: Int

    /// The state before the first step: every membrane at `initialMembrane`, no spike.
    public init(neurons: Int, groups: Int, initialMembrane: Float) {
        membrane = [Float](repeating: initialMembrane, count: neurons)
        spikes = [Float](repeating: 0, count: neurons)
        self.groups = groups
    }

    /// The state with image `image` (of `images`) reset to zero potential and no spike.
    public func zeroing(image: Int, of images: Int) -> NeuronState {
        var out = self
        let per = membrane.count / max(1, groups * images)
        for g in 0..<groups {
            let start = (g * images + image) * per
            for k in start..<(start + per) {
                out.membrane[k] = 0
                out.spikes[k] = 0
            }
        }
        return out
    }

    /// The state of images `keep` (indices into the `images` the state holds), in that order.
    public func selecting(_ keep: [Int], of images: Int) -> NeuronState {
        var out = self
        out.membrane = Frames.select(membrane, groups: groups, steps: 1, images: images, keep: keep)
        out.spikes = Frames.select(spikes, groups: groups, steps: 1, images: images, keep: keep)
        return out
    }
}

/// The membrane recurrence of a spiking layer, run over all steps of a `Frames` batch.
public enum NeuronDynamics {
    /// Replaces input currents with spikes (0/1) in place, following
    /// u_t = leak·u_{t−1} + I_t − θ·o_{t−1}, o_t = [u_t > θ], from u_{−1} = `initialMembrane`
    /// (0 in the reference method; θ/2 halves the rounding error of a few steps, Bu et al. 2022)
    /// and no spike — or from `state`, which then holds the state after the last step.
    /// Returns each image's spike count.
    ///
    /// Work is split over neurons (the recurrence is independent per neuron); each core walks its
    /// neurons in cache-sized tiles, steps outside and neurons inside (`sn_integrate_fire`).
    public static func fire(
        _ x: inout Frames, threshold θ: Float, leak: Float, initialMembrane: Float = 0, state: inout NeuronState?
    ) -> [Int] {
        run(&x, constantCurrent: nil, threshold: θ, leak: leak, initialMembrane: initialMembrane, state: &state)
    }

    public static func fire(_ x: inout Frames, threshold θ: Float, leak: Float, initialMembrane: Float = 0) -> [Int] {
        var none: NeuronState? = nil
        return fire(&x, threshold: θ, leak: leak, initialMembrane: initialMembrane, state: &none)
    }

    /// The spikes of `timesteps` steps driven by the same current at every step (`current` holds
    /// one step, as direct input's first layer gives), without materialising T copies of it.
    public static func fire(
        constantCurrent current: Frames, timesteps: Int, threshold θ: Float, leak: Float, initialMembrane: Float = 0,
        state: inout NeuronState?
    ) -> (spikes: Frames, counts: [Int]) {
        precondition(current.timesteps == 1)
        var spikes = Frames(uninitializedShape: current.shape, timesteps: timesteps, images: current.images)
        let counts = run(
            &spikes, constantCurrent: current, threshold: θ, leak: leak, initialMembrane: initialMembrane, state: &state)
        return (spikes, counts)
    }

    public static func fire(constantCurrent current: Frames, timesteps: Int, threshold θ: Float, leak: Float, initialMembrane: Float = 0)
        -> (spikes: Frames, counts: [Int])
    {
        var none: NeuronState? = nil
        return fire(
            constantCurrent: current, timesteps: timesteps, threshold: θ, leak: leak, initialMembrane: initialMembrane, state: &none)
    }

    /// Largest H·W that `fireAndPool` handles (one plane's state must fit its stack buffers).
    public static let maxFusedPlane = 4096

    /// Fires a spiking layer over `timesteps` steps and 2×2-average-pools its spikes (stride 2) in
    /// one pass: returns the pooled frames `[C, T·b, H/2, W/2]` and each image's spike count.
    /// `current` holds every step, or one step when the current is the same at every step.
    public static func fireAndPool(
        _ current: Frames, timesteps: Int, threshold θ: Float, leak: Float, initialMembrane: Float = 0,
        state: inout NeuronState?
    ) -> (pooled: Frames, counts: [Int]) {
        let (c, h, w, b) = (current.shape[0], current.shape[1], current.shape[2], current.images)
        precondition(h % 2 == 0 && w % 2 == 0 && h * w <= maxFusedPlane)
        precondition(current.timesteps == timesteps || current.timesteps == 1)
        var pooled = Frames(uninitializedShape: [c, h / 2, w / 2], timesteps: timesteps, images: b)
        var partial = [Int64](repeating: 0, count: Parallel.cores * b)
        let constant: Int32 = current.timesteps == 1 && timesteps > 1 ? 1 : 0
        withState(&state) { su, so in
            current.scalars.withUnsafeBufferPointer { src in
                pooled.scalars.withUnsafeMutableBufferPointer { dst in
                    partial.withUnsafeMutableBufferPointer { pc in
                        let x = SharedPointer(UnsafeMutablePointer(mutating: src.baseAddress!)), y = SharedPointer(dst.baseAddress!)
                        let counts = SharedPointer(pc.baseAddress!)
                        Parallel.forEachChunk(c * b, grain: 8) { chunk, planes in
                            sn_integrate_fire_pool(
                                x.base, constant, Int64(b), Int64(timesteps), Int64(h), Int64(w),
                                Int64(planes.lowerBound), Int64(planes.count), θ, leak, initialMembrane, su?.base, so?.base, y.base,
                                counts.base + chunk * b)
                        }
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

    /// Shared pointers to the state's arrays (nil without a state), for the kernels.
    public static func fireAndPool(_ current: Frames, timesteps: Int, threshold θ: Float, leak: Float, initialMembrane: Float = 0)
        -> (pooled: Frames, counts: [Int])
    {
        var none: NeuronState? = nil
        return fireAndPool(current, timesteps: timesteps, threshold: θ, leak: leak, initialMembrane: initialMembrane, state: &none)
    }

    static func withState<R>(_ state: inout NeuronState?, _ body: (SharedPointer<Float>?, SharedPointer<Float>?) -> R) -> R {
        guard var s = state else { return body(nil, nil) }
        state = nil  // the arrays are uniquely referenced while the kernel writes them
        defer { state = s }
        return s.membrane.withUnsafeMutableBufferPointer { m in
            s.spikes.withUnsafeMutableBufferPointer { o in body(SharedPointer(m.baseAddress!), SharedPointer(o.baseAddress!)) }
        }
    }

    static func run(
        _ x: inout Frames, constantCurrent: Frames?, threshold θ: Float, leak: Float, initialMembrane: Float,
        state: inout NeuronState?
    ) -> [Int] {
        let (groups, t, l, b) = (x.groups, x.timesteps, x.blockLength, x.images)
        let perImage = x.perImage
        let total = groups * l
        var partial = [Int64](repeating: 0, count: Parallel.cores * b)
        withState(&state) { su, so in
            (constantCurrent?.scalars ?? []).withUnsafeBufferPointer { cur in
                let current = constantCurrent == nil ? nil : SharedPointer(UnsafeMutablePointer(mutating: cur.baseAddress!))
                x.scalars.withUnsafeMutableBufferPointer { buf in
                    let frames = SharedPointer(buf.baseAddress!)
                    partial.withUnsafeMutableBufferPointer { pc in
                        let counts = SharedPointer(pc.baseAddress!)
                        Parallel.forEachChunk(total, grain: 4096) { chunk, range in
                            sn_integrate_fire(
                                frames.base, current?.base, Int64(groups), Int64(t), Int64(l),
                                Int64(range.lowerBound), Int64(range.count), θ, leak, initialMembrane, su?.base, so?.base,
                                Int64(perImage), counts.base + chunk * b)
                        }
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
