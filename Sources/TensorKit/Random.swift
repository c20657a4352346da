import Foundation

/// A small, fast, seedable generator (xoshiro256**), so training, dropout masks and Poisson input
/// coding are reproducible from one integer seed on every platform.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    @usableFromInline var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        // SplitMix64 spreads the seed over the 256-bit state; xoshiro must not start all-zero.
        var x = seed
        func next() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (next(), next(), next(), next())
    }

    @inlinable
    public mutating func next() -> UInt64 {
        let result = rotl(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = rotl(s.3, 45)
        return result
    }

    @inlinable
    func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform in [0, 1) with 24 random bits: every value is exactly representable as Float.
    @inlinable
    public mutating func nextUnitFloat() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// Standard normal by Box–Muller (one of the pair is dropped: simplicity over speed, init only).
    public mutating func nextNormal() -> Float {
        var u1 = nextUnitFloat()
        if u1 < 1e-7 { u1 = 1e-7 }
        let u2 = nextUnitFloat()
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }

    /// A derived generator for stream `k`, e.g. one per worker or per sample, independent of order.
    public func split(_ k: UInt64) -> SeededGenerator {
        var copy = self
        return SeededGenerator(seed: copy.next() ^ (k &* 0xD1B5_4A32_D192_ED03))
    }
}

extension Tensor {
    /// He (Kaiming) normal initialisation, std = sqrt(2 / fanIn): keeps ReLU activations' variance
    /// steady through depth, which also keeps the converted thresholds in a sane range.
    public static func kaimingNormal(shape: [Int], fanIn: Int, generator: inout SeededGenerator) -> Tensor {
        let std = (2 / Float(fanIn)).squareRoot()
        var t = Tensor(shape: shape)
        for i in 0..<t.count { t.scalars[i] = generator.nextNormal() * std }
        return t
    }
}
