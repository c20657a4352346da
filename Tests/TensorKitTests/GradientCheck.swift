import Testing

@testable import TensorKit

/// Random tensor with entries in [−1, 1).
func randomTensor(_ shape: [Int], seed: UInt64) -> Tensor {
    var rng = SeededGenerator(seed: seed)
    var t = Tensor(shape: shape)
    for i in 0..<t.count { t.scalars[i] = 2 * rng.nextUnitFloat() - 1 }
    return t
}

/// Checks an analytic gradient against central finite differences of the scalar
/// L(x) = Σ f(x) ⊙ R for a fixed random R (so ∂L/∂f = R is the upstream gradient).
///
/// Float32 central differences with step h have error O(h²) from truncation plus O(ε/h) from
/// rounding; h = 1e-2 balances them, and we accept |a − n| ≤ atol + rtol·|n|.
func checkGradient(
    at x: Tensor, analytic: Tensor, step h: Float = 1e-2, atol: Float = 2e-3, rtol: Float = 2e-2,
    samples: Int = 60, sourceLocation: SourceLocation = #_sourceLocation,
    loss: (Tensor) -> Float
) {
    #expect(analytic.shape == x.shape, sourceLocation: sourceLocation)
    let stride = max(1, x.count / samples)
    var worst: Float = 0
    for i in Swift.stride(from: 0, to: x.count, by: stride) {
        var plus = x, minus = x
        plus.scalars[i] += h
        minus.scalars[i] -= h
        let numeric = (loss(plus) - loss(minus)) / (2 * h)
        let excess = abs(analytic.scalars[i] - numeric) - (atol + rtol * abs(numeric))
        worst = max(worst, excess)
        #expect(excess <= 0, "element \(i): analytic \(analytic.scalars[i]) vs numeric \(numeric)", sourceLocation: sourceLocation)
        if excess > 0 { return }
    }
}

func dot(_ a: Tensor, _ b: Tensor) -> Float {
    var s: Double = 0
    for i in 0..<a.count { s += Double(a.scalars[i]) * Double(b.scalars[i]) }
    return Float(s)
}
