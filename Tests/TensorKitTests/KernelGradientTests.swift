import Foundation
import Testing

@testable import TensorKit

@Suite struct ConvolutionTests {
    @Test func forwardMatchesHandComputedCase() {
        // 1×1×3×3 input 1…9, 2×2 kernel of ones, stride 1, no padding: sums of 2×2 windows.
        var ws = Workspace()
        let x = Tensor(shape: [1, 1, 3, 3], scalars: (1...9).map(Float.init))
        let w = Tensor(shape: [1, 1, 2, 2], repeating: 1)
        let g = Conv2DGeometry(inChannels: 1, outChannels: 1, kernel: 2)
        #expect(conv2d(x, weight: w, geometry: g, workspace: &ws).scalars == [12, 16, 24, 28])
        // Padding 1, stride 2 on the same input: corners see one to four taps.
        let gp = Conv2DGeometry(inChannels: 1, outChannels: 1, kernel: 2, stride: 2, padding: 1)
        #expect(conv2d(x, weight: w, geometry: gp, workspace: &ws).scalars == [1, 5, 11, 28])
        // A bias is added per output channel.
        let b = Tensor(shape: [1], scalars: [0.5])
        #expect(conv2d(x, weight: w, bias: b, geometry: g, workspace: &ws).scalars == [12.5, 16.5, 24.5, 28.5])
    }

    @Test(arguments: [(1, 1, 3), (2, 0, 3), (1, 0, 1), (2, 1, 2)])
    func backwardMatchesFiniteDifferences(stride: Int, padding: Int, kernel: Int) {
        var ws = Workspace()
        let g = Conv2DGeometry(inChannels: 3, outChannels: 4, kernel: kernel, stride: stride, padding: padding)
        let x = randomTensor([2, 3, 6, 5], seed: 1)
        let w = randomTensor([4, 3, kernel, kernel], seed: 2)
        let b = randomTensor([4], seed: 3)
        let y = conv2d(x, weight: w, bias: b, geometry: g, workspace: &ws)
        let r = randomTensor(y.shape, seed: 4)
        let grads = conv2dBackward(x, weight: w, gradOutput: r, geometry: g, withBias: true, workspace: &ws)
        checkGradient(at: x, analytic: grads.input!) { dot(conv2d($0, weight: w, bias: b, geometry: g, workspace: &ws), r) }
        checkGradient(at: w, analytic: grads.weight) { dot(conv2d(x, weight: $0, bias: b, geometry: g, workspace: &ws), r) }
        checkGradient(at: b, analytic: grads.bias!) { dot(conv2d(x, weight: w, bias: $0, geometry: g, workspace: &ws), r) }
    }

    @Test func chunkedBatchesAgreeWithOneImageAtATime() {
        // Large enough that imagesPerChunk splits the batch.
        var ws = Workspace()
        let g = Conv2DGeometry(inChannels: 8, outChannels: 4, kernel: 3, padding: 1)
        let n = Workspace.maxColumnFloats / (72 * 32 * 32) + 3
        let x = randomTensor([n, 8, 32, 32], seed: 5)
        let w = randomTensor([4, 8, 3, 3], seed: 6)
        let all = conv2d(x, weight: w, geometry: g, workspace: &ws)
        let per = 8 * 32 * 32
        let last = Tensor(shape: [1, 8, 32, 32], scalars: Array(x.scalars[(n - 1) * per..<n * per]))
        let one = conv2d(last, weight: w, geometry: g, workspace: &ws)
        let tail = Array(all.scalars[(n - 1) * 4 * 1024..<n * 4 * 1024])
        #expect(zip(tail, one.scalars).allSatisfy { abs($0 - $1) < 1e-4 })
    }
}

@Suite struct LayerGradientTests {
    @Test func linearForwardAndBackward() {
        let x = Tensor(shape: [1, 2], scalars: [1, 2])
        let w = Tensor(shape: [2, 2], scalars: [1, 0, 3, -1])
        #expect(linear(x, weight: w, bias: Tensor(shape: [2], scalars: [0, 1])).scalars == [1, 2])
        let xs = randomTensor([3, 5], seed: 1), ws = randomTensor([4, 5], seed: 2), bs = randomTensor([4], seed: 3)
        let r = randomTensor([3, 4], seed: 4)
        let grads = linearBackward(xs, weight: ws, gradOutput: r, withBias: true)
        checkGradient(at: xs, analytic: grads.input!) { dot(linear($0, weight: ws, bias: bs), r) }
        checkGradient(at: ws, analytic: grads.weight) { dot(linear(xs, weight: $0, bias: bs), r) }
        checkGradient(at: bs, analytic: grads.bias!) { dot(linear(xs, weight: ws, bias: $0), r) }
    }

    @Test func averagePool() {
        let x = Tensor(shape: [1, 1, 2, 4], scalars: [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(avgPool2d(x, kernel: 2, stride: 2).scalars == [3.5, 5.5])
        let xs = randomTensor([2, 3, 6, 6], seed: 1)
        let r = randomTensor([2, 3, 3, 3], seed: 2)
        let g = avgPool2dBackward(r, inputShape: xs.shape, kernel: 2, stride: 2)
        checkGradient(at: xs, analytic: g) { dot(avgPool2d($0, kernel: 2, stride: 2), r) }
        // Overlapping windows (kernel 3, stride 1) accumulate.
        let r3 = randomTensor([2, 3, 4, 4], seed: 3)
        let g3 = avgPool2dBackward(r3, inputShape: xs.shape, kernel: 3, stride: 1)
        checkGradient(at: xs, analytic: g3) { dot(avgPool2d($0, kernel: 3, stride: 1), r3) }
    }

    @Test func maxPool() {
        let x = Tensor(shape: [1, 1, 2, 4], scalars: [1, 9, 3, 4, 5, 6, 7, 2])
        let (y, idx) = maxPool2d(x, kernel: 2, stride: 2)
        #expect(y.scalars == [9, 7] && idx == [1, 6])
        let xs = randomTensor([2, 2, 4, 4], seed: 1)
        let r = randomTensor([2, 2, 2, 2], seed: 2)
        let (_, am) = maxPool2d(xs, kernel: 2, stride: 2)
        let g = maxPool2dBackward(r, argmax: am, inputShape: xs.shape)
        // Small step: the arg-max must not change within ±h.
        checkGradient(at: xs, analytic: g, step: 1e-3, atol: 5e-3) { dot(maxPool2d($0, kernel: 2, stride: 2).output, r) }
    }

    @Test func reluDropoutAndResidual() {
        #expect(relu(Tensor(shape: [3], scalars: [-1, 0, 2])).scalars == [0, 0, 2])
        let xs = randomTensor([4, 10], seed: 1)
        let r = randomTensor([4, 10], seed: 2)
        checkGradient(at: xs, analytic: reluBackward(r, output: relu(xs)), step: 1e-3, atol: 5e-3) { dot(relu($0), r) }
        var rng = SeededGenerator(seed: 3)
        let mask = dropoutMask(count: 40, probability: 0.5, generator: &rng)
        #expect(mask.allSatisfy { $0 == 0 || $0 == 2 })
        checkGradient(at: xs, analytic: multiply(r, mask: mask)) { dot(multiply($0, mask: mask), r) }
        // Residual: the same upstream gradient reaches both branches.
        let other = randomTensor([4, 10], seed: 4)
        checkGradient(at: xs, analytic: r) { dot(add($0, other), r) }
        // Inverted dropout keeps the mean: E[mask] = 1.
        let big = dropoutMask(count: 100_000, probability: 0.2, generator: &rng)
        #expect(abs(big.reduce(0, +) / 100_000 - 1) < 0.02)
    }

    @Test func softmaxCrossEntropy() {
        // Uniform logits: loss = log k, gradient = (1/k − onehot)/n.
        let (loss, grad, _) = TensorKit.softmaxCrossEntropy(Tensor(shape: [1, 4]), labels: [2])
        #expect(abs(loss - Float(4).logValue) < 1e-6)
        #expect(abs(grad.scalars[2] - (-0.75)) < 1e-6 && abs(grad.scalars[0] - 0.25) < 1e-6)
        let z = randomTensor([3, 5], seed: 1)
        let labels = [0, 4, 2]
        let analytic = TensorKit.softmaxCrossEntropy(z, labels: labels).gradient
        checkGradient(at: z, analytic: analytic) { TensorKit.softmaxCrossEntropy($0, labels: labels).loss }
        // Huge logits do not overflow.
        let (hugeLoss, _, correct) = TensorKit.softmaxCrossEntropy(Tensor(shape: [1, 2], scalars: [1000, 0]), labels: [0])
        #expect(hugeLoss.isFinite && hugeLoss < 1e-6 && correct == 1)
    }
}

extension Float {
    var logValue: Float { Float(Foundation.log(Double(self))) }
}

@Suite struct OptimizerTests {
    @Test func sgdMomentumByHand() {
        var opt = SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 0.5)
        var p = [Tensor(shape: [1], scalars: [2])]
        let g = [Tensor(shape: [1], scalars: [1])]
        opt.step(&p, gradients: g)  // d = 1 + 0.5·2 = 2; v = 2; p = 2 − 0.2 = 1.8
        #expect(abs(p[0].scalars[0] - 1.8) < 1e-6)
        opt.step(&p, gradients: g)  // d = 1 + 0.9 = 1.9; v = 1.8 + 1.9 = 3.7; p = 1.8 − 0.37
        #expect(abs(p[0].scalars[0] - 1.43) < 1e-5)
    }

    @Test func adamFirstStepIsLearningRateSized() {
        // With bias correction the first Adam step is lr·sign(g) (up to ε).
        var opt = Adam(learningRate: 0.01, amsgrad: true)
        var p = [Tensor(shape: [2], scalars: [1, 1])]
        opt.step(&p, gradients: [Tensor(shape: [2], scalars: [3, -0.001])])
        #expect(abs(p[0].scalars[0] - 0.99) < 1e-5 && abs(p[0].scalars[1] - 1.01) < 1e-4)
    }

    @Test func amsgradNeverLetsTheStepGrowBack() {
        // A large gradient then small ones: AMSGrad keeps v̂ at the large value, so later steps
        // are smaller than plain Adam's.
        var ams = Adam(learningRate: 0.1, amsgrad: true), plain = Adam(learningRate: 0.1)
        var pa = [Tensor(shape: [1], scalars: [0])], pp = pa
        for g: Float in [10, 0.1, 0.1, 0.1] {
            ams.step(&pa, gradients: [Tensor(shape: [1], scalars: [g])])
            plain.step(&pp, gradients: [Tensor(shape: [1], scalars: [g])])
        }
        #expect(pa[0].scalars[0] > pp[0].scalars[0])
    }

    @Test func adamMinimisesAQuadratic() {
        var opt = Adam(learningRate: 0.05, amsgrad: true)
        var p = [Tensor(shape: [3], scalars: [3, -2, 1])]
        for _ in 0..<500 { opt.step(&p, gradients: [Tensor(shape: [3], scalars: p[0].scalars.map { 2 * $0 })]) }
        #expect(p[0].scalars.allSatisfy { abs($0) < 0.05 })
    }
}

@Suite struct ChannelMajorConvolutionTests {
    /// `[c, frames, h, w]` ↔ NCHW, to compare with the already-checked NCHW kernels.
    func toChannelMajor(_ x: Tensor) -> [Float] {
        let (n, c, p) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        var out = [Float](repeating: 0, count: x.count)
        for i in 0..<n { for ch in 0..<c { for j in 0..<p { out[(ch * n + i) * p + j] = x.scalars[(i * c + ch) * p + j] } } }
        return out
    }

    @Test(arguments: [(1, 1, 3), (2, 1, 3), (1, 0, 1)])
    func forwardAndBackwardMatchNCHW(stride: Int, padding: Int, kernel: Int) {
        var ws = Workspace()
        let g = Conv2DGeometry(inChannels: 3, outChannels: 4, kernel: kernel, stride: stride, padding: padding)
        let x = randomTensor([5, 3, 6, 6], seed: 1)
        let w = randomTensor([4, 3, kernel, kernel], seed: 2)
        let y = conv2d(x, weight: w, geometry: g, workspace: &ws)
        let (oh, ow) = g.outputSize(height: 6, width: 6)
        var ycm = [Float](repeating: 0, count: 4 * 5 * oh * ow)
        let xcm = toChannelMajor(x)
        xcm.withUnsafeBufferPointer { xp in
            w.withUnsafePointer { wp in
                ycm.withUnsafeMutableBufferPointer { yp in
                    conv2dChannelMajor(
                        xp.baseAddress!, frames: 5, height: 6, width: 6, weight: wp, bias: nil, geometry: g,
                        output: yp.baseAddress!, workspace: &ws)
                }
            }
        }
        #expect(zip(ycm, toChannelMajor(y)).allSatisfy { abs($0 - $1) < 1e-4 })
        let r = randomTensor(y.shape, seed: 3)
        let reference = conv2dBackward(x, weight: w, gradOutput: r, geometry: g, workspace: &ws)
        var gw = [Float](repeating: 0, count: w.count), gx = [Float](repeating: 0, count: x.count)
        let rcm = toChannelMajor(r)
        xcm.withUnsafeBufferPointer { xp in
            w.withUnsafePointer { wp in
                rcm.withUnsafeBufferPointer { rp in
                    gw.withUnsafeMutableBufferPointer { gwp in
                        gx.withUnsafeMutableBufferPointer { gxp in
                            conv2dChannelMajorBackward(
                                xp.baseAddress!, frames: 5, height: 6, width: 6, weight: wp, gradOutput: rp.baseAddress!,
                                geometry: g, gradWeight: gwp.baseAddress!, gradInput: gxp.baseAddress!, workspace: &ws)
                        }
                    }
                }
            }
        }
        #expect(zip(gw, reference.weight.scalars).allSatisfy { abs($0 - $1) < 1e-3 })
        #expect(zip(gx, toChannelMajor(reference.input!)).allSatisfy { abs($0 - $1) < 1e-4 })
    }
}
