import CNative

/// Instruction-set extensions the CPU offers *and* the OS has enabled (XCR0), read once via CPUID.
public struct CPUFeatures: Sendable, Equatable {
    public var sse42, avx, fma, avx2: Bool
    public var avx512f, avx512dq, avx512cd, avx512bw, avx512vl, avx512vnni, avx512bf16: Bool

    public static let current: CPUFeatures = {
        var raw = sn_cpu_features()
        sn_cpu_detect(&raw)
        return CPUFeatures(
            sse42: raw.sse42 != 0, avx: raw.avx != 0, fma: raw.fma != 0, avx2: raw.avx2 != 0,
            avx512f: raw.avx512f != 0, avx512dq: raw.avx512dq != 0, avx512cd: raw.avx512cd != 0,
            avx512bw: raw.avx512bw != 0, avx512vl: raw.avx512vl != 0,
            avx512vnni: raw.avx512_vnni != 0, avx512bf16: raw.avx512_bf16 != 0)
    }()

    /// Names of the present features, in a stable order, as reported by `spikeserve system`.
    public var names: [String] {
        let all: [(String, Bool)] = [
            ("sse4.2", sse42), ("avx", avx), ("fma", fma), ("avx2", avx2),
            ("avx512f", avx512f), ("avx512dq", avx512dq), ("avx512cd", avx512cd),
            ("avx512bw", avx512bw), ("avx512vl", avx512vl), ("avx512_vnni", avx512vnni),
            ("avx512_bf16", avx512bf16),
        ]
        return all.filter(\.1).map(\.0)
    }
}
