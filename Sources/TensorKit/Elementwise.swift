/// max(0, x).
public func relu(_ x: Tensor) -> Tensor {
    var y = x
    y.withUnsafeMutablePointer { p in
        for i in 0..<x.count where p[i] < 0 { p[i] = 0 }
    }
    return y
}

/// Gradient of `relu` given its output: passes where the output is positive (the subgradient at 0 is 0).
public func reluBackward(_ gradOutput: Tensor, output: Tensor) -> Tensor {
    var g = gradOutput
    output.withUnsafePointer { y in
        g.withUnsafeMutablePointer { p in
            for i in 0..<output.count where y[i] <= 0 { p[i] = 0 }
        }
    }
    return g
}

/// An inverted-dropout mask: each entry is 0 with probability p, else 1/(1−p), so the expected
/// activation is unchanged and inference needs no rescaling.
public func dropoutMask(count: Int, probability p: Float, generator: inout SeededGenerator) -> [Float] {
    precondition(p >= 0 && p < 1, "dropout probability must be in [0, 1)")
    let keep = 1 / (1 - p)
    var mask = [Float](repeating: 0, count: count)
    for i in 0..<count { mask[i] = generator.nextUnitFloat() >= p ? keep : 0 }
    return mask
}

/// A dropout mask like `dropoutMask`, drawn in parallel: one value is taken from `generator`, and
/// each block of 65,536 entries has its own generator seeded from it and the block's index, so the
/// mask depends on the seed and `count` only, not on the number of cores. (Its values differ from
/// `dropoutMask`'s for the same seed.)
public func parallelDropoutMask(count: Int, probability p: Float, generator: inout SeededGenerator) -> [Float] {
    precondition(p >= 0 && p < 1, "dropout probability must be in [0, 1)")
    let keep = 1 / (1 - p)
    let base = generator.next()
    let block = 1 << 16
    return [Float](unsafeUninitializedCapacity: count) { buffer, n in
        let out = SharedPointer(buffer.baseAddress!)
        Parallel.forEach((count + block - 1) / block) { blocks in
            for b in blocks {
                var rng = SeededGenerator(seed: base ^ (UInt64(b) &* 0x9E37_79B9_7F4A_7C15))
                for i in (b * block)..<min(count, (b + 1) * block) { out.base[i] = rng.nextUnitFloat() >= p ? keep : 0 }
            }
        }
        n = count
    }
}

/// x ⊙ mask: the dropout forward pass; the backward pass is the same product with the gradient.
public func multiply(_ x: Tensor, mask: [Float]) -> Tensor {
    precondition(mask.count == x.count)
    var y = x
    y.withUnsafeMutablePointer { p in
        mask.withUnsafeBufferPointer { m in
            for i in 0..<x.count { p[i] *= m[i] }
        }
    }
    return y
}

/// Residual addition a + b; its gradient reaches both branches unchanged.
public func add(_ a: Tensor, _ b: Tensor) -> Tensor { a + b }

/// Row-wise softmax cross-entropy of `logits` `[n, k]` against integer labels.
/// Returns the mean loss, its gradient with respect to the logits, and how many rows' arg-max
/// matched the label. Softmax subtracts the row maximum first, so large logits cannot overflow.
public func softmaxCrossEntropy(_ logits: Tensor, labels: [Int]) -> (loss: Float, gradient: Tensor, correct: Int) {
    let n = logits.shape[0], k = logits.shape[1]
    precondition(labels.count == n)
    var grad = Tensor(shape: logits.shape)
    var loss: Double = 0
    var correct = 0
    logits.withUnsafePointer { z in
        grad.withUnsafeMutablePointer { g in
            for i in 0..<n {
                let row = z + i * k, grow = g + i * k
                var maxV = row[0], arg = 0
                for j in 1..<k where row[j] > maxV { maxV = row[j]; arg = j }
                if arg == labels[i] { correct += 1 }
                var sum: Float = 0
                for j in 0..<k {
                    let e = expf(row[j] - maxV)
                    grow[j] = e
                    sum += e
                }
                loss += Double(logf(sum) + maxV - row[labels[i]])
                let inv = 1 / (sum * Float(n))
                for j in 0..<k { grow[j] *= inv }
                grow[labels[i]] -= 1 / Float(n)
            }
        }
    }
    return (Float(loss / Double(n)), grad, correct)
}

#if canImport(Glibc)
    import Glibc
#else
    import Darwin
#endif

/// Numerically safe softmax (the maximum is subtracted first).
public func softmax(_ z: [Float]) -> [Float] {
    let m = z.max() ?? 0
    let e = z.map { expf($0 - m) }
    let s = e.reduce(0, +)
    return e.map { $0 / s }
}
