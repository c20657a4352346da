import NativeBridge

/// Fully connected layer: `y[n, out] = x[n, in] · Wᵀ + b`, with `weight` `[out, in]` (PyTorch layout).
public func linear(_ input: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
    let n = input.shape[0], inF = weight.shape[1], outF = weight.shape[0]
    precondition(input.count == n * inF, "linear input \(input.shape) vs weight \(weight.shape)")
    var out = Tensor(shape: [n, outF])
    input.withUnsafePointer { x in
        weight.withUnsafePointer { w in
            out.withUnsafeMutablePointer { y in
                BLAS.sgemm(transB: true, m: n, n: outF, k: inF, a: x, lda: inF, b: w, ldb: inF, c: y, ldc: outF)
            }
        }
    }
    if let bias { addChannelBias(&out, bias) }
    return out
}

/// Gradients of `linear`: dX = dY·W, dW = dYᵀ·X, db = Σₙ dY. With `needWeightGradient` false, dW
/// is left zero (the caller computes it another way, e.g. event-driven).
public func linearBackward(
    _ input: Tensor, weight: Tensor, gradOutput: Tensor, needInputGradient: Bool = true, withBias: Bool = false,
    needWeightGradient: Bool = true
) -> (input: Tensor?, weight: Tensor, bias: Tensor?) {
    let n = input.shape[0], inF = weight.shape[1], outF = weight.shape[0]
    var gradWeight = Tensor(shape: needWeightGradient ? weight.shape : [0])
    if needWeightGradient {
        gradOutput.withUnsafePointer { gy in
            input.withUnsafePointer { x in
                gradWeight.withUnsafeMutablePointer { gw in
                    BLAS.sgemm(transA: true, m: outF, n: inF, k: n, a: gy, lda: outF, b: x, ldb: inF, c: gw, ldc: inF)
                }
            }
        }
    }
    var gradInput: Tensor? = nil
    if needInputGradient {
        var gx = Tensor(shape: input.shape)
        gradOutput.withUnsafePointer { gy in
            weight.withUnsafePointer { w in
                gx.withUnsafeMutablePointer { g in
                    BLAS.sgemm(m: n, n: inF, k: outF, a: gy, lda: outF, b: w, ldb: inF, c: g, ldc: inF)
                }
            }
        }
        gradInput = gx
    }
    return (gradInput, gradWeight, withBias ? channelSums(gradOutput) : nil)
}
