import Testing

@testable import TensorKit

/// The event-driven kernels against the dense ones, on sparse inputs of the kinds a spiking layer
/// sees: spikes (0/1), average-pooled spikes (quarters), and signed or arbitrary values. Sums run
/// in a different order, so the comparison is to a float-rounding tolerance.
@Suite struct EventDrivenTests {
    /// `count` values of which about `rate` are non-zero, drawn from `values`.
    func sparse(_ count: Int, rate: Double, values: [Float], seed: UInt64) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        return (0..<count).map { _ in
            Double(rng.nextUnitFloat()) < rate ? values[Int(rng.next() % UInt64(values.count))] : 0
        }
    }

    static let valueKinds: [[Float]] = [[1], [0.25, 0.5, 0.75, 1], [-1, 1], [-2.5, 0.3, 7.1]]

    /// Geometries covering both kernel forms (gather: out channels a multiple of 64; scatter:
    /// others), strides, paddings, 1×1 and 5×5 kernels, with and without bias.
    static let geometries: [(Conv2DGeometry, Bool)] = [
        (Conv2DGeometry(inChannels: 3, outChannels: 64, kernel: 3, stride: 1, padding: 1), false),
        (Conv2DGeometry(inChannels: 5, outChannels: 10, kernel: 3, stride: 2, padding: 1), true),
        (Conv2DGeometry(inChannels: 4, outChannels: 128, kernel: 1, stride: 1, padding: 0), true),
        (Conv2DGeometry(inChannels: 2, outChannels: 64, kernel: 5, stride: 2, padding: 2), true),
        (Conv2DGeometry(inChannels: 3, outChannels: 7, kernel: 3, stride: 1, padding: 0), false),
    ]

    @Test(arguments: geometries.indices, [0.0, 0.03, 0.3, 1.0])
    func convolutionMatchesDense(geometryIndex: Int, rate: Double) {
        let (g, hasBias) = Self.geometries[geometryIndex]
        for (k, values) in Self.valueKinds.enumerated() {
            let (frames, h, w) = (6, 9, 7)
            let x = sparse(g.inChannels * frames * h * w, rate: rate, values: values, seed: UInt64(geometryIndex * 10 + k))
            let weight = randomTensor([g.outChannels, g.inChannels, g.kernelHeight, g.kernelWidth], seed: 5)
            let bias = hasBias ? randomTensor([g.outChannels], seed: 6).scalars : nil
            let (oh, ow) = g.outputSize(height: h, width: w)
            var dense = [Float](repeating: .nan, count: g.outChannels * frames * oh * ow)
            var event = dense
            var ws = Workspace()
            let wt = eventDrivenWeights(weight)
            x.withUnsafeBufferPointer { xp in
                weight.withUnsafePointer { wp in
                    (bias ?? []).withUnsafeBufferPointer { bp in
                        let b = bias == nil ? nil : bp.baseAddress
                        conv2dChannelMajor(
                            xp.baseAddress!, frames: frames, height: h, width: w, weight: wp, bias: b,
                            geometry: g, output: &dense, workspace: &ws)
                        eventConv2dChannelMajor(
                            xp.baseAddress!, frames: frames, height: h, width: w, weightT: wt,
                            bias: b, geometry: g, output: &event)
                    }
                }
            }
            for i in dense.indices {
                #expect(abs(dense[i] - event[i]) <= 1e-4 * max(1, abs(dense[i])), "output \(i), values \(values)")
            }
        }
    }

    @Test(arguments: [(1, 50, 64, false), (4, 9, 256, true), (3, 5, 10, true), (1, 33, 7, false)], [0.0, 0.05, 0.5])
    func linearMatchesDense(layout: (groups: Int, per: Int, out: Int, bias: Bool), rate: Double) {
        let frames = 5
        let features = layout.groups * layout.per
        for (k, values) in Self.valueKinds.enumerated() {
            // Channel-major storage: element (f, g·per + p) at (g·frames + f)·per + p.
            let stored = sparse(features * frames, rate: rate, values: values, seed: UInt64(k + 100))
            var frameMajor = [Float](repeating: 0, count: frames * features)
            for f in 0..<frames {
                for g in 0..<layout.groups {
                    for p in 0..<layout.per { frameMajor[f * features + g * layout.per + p] = stored[(g * frames + f) * layout.per + p] }
                }
            }
            let weight = randomTensor([layout.out, features], seed: 7)
            let bias = layout.bias ? randomTensor([layout.out], seed: 8) : nil
            let dense = linear(Tensor(shape: [frames, features], scalars: frameMajor), weight: weight, bias: bias)
            var event = [Float](repeating: .nan, count: frames * layout.out)
            let wt = eventDrivenWeights(weight)
            stored.withUnsafeBufferPointer { xp in
                (bias?.scalars ?? []).withUnsafeBufferPointer { bp in
                    eventLinear(
                        xp.baseAddress!, frames: frames, groups: layout.groups, perGroup: layout.per, weightT: wt,
                        bias: bias == nil ? nil : bp.baseAddress, outFeatures: layout.out, output: &event)
                }
            }
            for i in event.indices {
                #expect(abs(dense.scalars[i] - event[i]) <= 1e-4 * max(1, abs(dense.scalars[i])), "output \(i), values \(values)")
            }
        }
    }

    @Test(arguments: geometries.indices, [0.03, 0.3])
    func convolutionWeightGradientMatchesDense(geometryIndex: Int, rate: Double) {
        let (g, _) = Self.geometries[geometryIndex]
        let (frames, h, w) = (5, 9, 7)
        let (oh, ow) = g.outputSize(height: h, width: w)
        let x = sparse(g.inChannels * frames * h * w, rate: rate, values: [0.25, 0.5, 1], seed: UInt64(geometryIndex))
        let gy = randomTensor([g.outChannels * frames * oh * ow], seed: 11).scalars
        let weight = randomTensor([g.outChannels, g.inChannels, g.kernelHeight, g.kernelWidth], seed: 12)
        var dense = Tensor(shape: weight.shape)
        var ws = Workspace()
        let event = x.withUnsafeBufferPointer { xp in
            gy.withUnsafeBufferPointer { gp in
                weight.withUnsafePointer { wp in
                    dense.withUnsafeMutablePointer { dw in
                        conv2dChannelMajorBackward(
                            xp.baseAddress!, frames: frames, height: h, width: w, weight: wp,
                            gradOutput: gp.baseAddress!, geometry: g, gradWeight: dw, gradInput: nil,
                            workspace: &ws)
                    }
                }
                return eventConv2dChannelMajorWeightGradient(
                    xp.baseAddress!, frames: frames, height: h, width: w,
                    gradOutput: gp.baseAddress!, geometry: g)
            }
        }
        #expect(event.shape == dense.shape)
        for i in dense.scalars.indices { #expect(abs(dense.scalars[i] - event.scalars[i]) <= 1e-4 * max(1, abs(dense.scalars[i]))) }
    }

    @Test(arguments: [0.0, 0.05, 0.5])
    func linearWeightGradientMatchesDense(rate: Double) {
        let (frames, inF, outF) = (7, 130, 48)
        let x = Tensor(shape: [frames, inF], scalars: sparse(frames * inF, rate: rate, values: [1, 0.5, -2], seed: 4))
        let gy = randomTensor([frames, outF], seed: 13)
        let weight = randomTensor([outF, inF], seed: 14)
        let dense = linearBackward(x, weight: weight, gradOutput: gy, needInputGradient: false).weight
        let event = eventLinearWeightGradient(x, gradOutput: gy)
        #expect(event.shape == dense.shape)
        for i in dense.scalars.indices { #expect(abs(dense.scalars[i] - event.scalars[i]) <= 1e-4 * max(1, abs(dense.scalars[i]))) }
    }

    @Test func nonzeroCountCountsEvents() {
        let x: [Float] = [0, 1, 0, -0.0, 0.25, -3, 0, 0, 1e-30]
        #expect(x.withUnsafeBufferPointer { nonzeroCount($0) } == 4)
        let big = sparse(100_003, rate: 0.1, values: [1], seed: 3)
        #expect(big.withUnsafeBufferPointer { nonzeroCount($0) } == big.filter { $0 != 0 }.count)
    }
}
