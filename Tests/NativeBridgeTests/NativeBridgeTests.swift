import Testing

@testable import NativeBridge

@Suite struct BLASKernelSelectionTests {
    @Test func neverForcesAKernelWiderThanTheCPU() {
        var f = CPUFeatures(
            sse42: true, avx: false, fma: false, avx2: false, avx512f: false, avx512dq: false,
            avx512cd: false, avx512bw: false, avx512vl: false, avx512vnni: false, avx512bf16: false)
        #expect(BLASKernelSelection.tier(of: f) == 0)
        #expect(BLASKernelSelection.coreType(forTier: 0) == nil)
        f.avx = true; f.avx2 = true
        #expect(BLASKernelSelection.tier(of: f) == 1, "AVX2 without FMA is not Haswell")
        f.fma = true
        #expect(BLASKernelSelection.coreType(forTier: BLASKernelSelection.tier(of: f)) == "Haswell")
        f.avx512f = true
        #expect(BLASKernelSelection.tier(of: f) == 2, "AVX-512F alone lacks what SkylakeX kernels use")
        f.avx512dq = true; f.avx512cd = true; f.avx512bw = true; f.avx512vl = true
        #expect(BLASKernelSelection.coreType(forTier: BLASKernelSelection.tier(of: f)) == "SkylakeX")
    }

    @Test func recognisedCoresAreNotReplacedByEqualTiers() {
        #expect(BLASKernelSelection.tier(ofCore: "Prescott") == 0)
        #expect(BLASKernelSelection.tier(ofCore: "Cooperlake") == 3)
        #expect(BLASKernelSelection.tier(ofCore: "Haswell") == 2)
        #expect(BLASKernelSelection.tier(ofCore: "SomethingNew") == 0)
    }

    @Test func runningCoreIsKnownAndNotAboveTheCPU() {
        #expect(!BLAS.coreName.isEmpty)
        #expect(BLAS.threads >= 1)
        // A forced kernel is never wider than the CPU; OpenBLAS's own pick may be anything it trusts.
        if let forced = BLASKernelSelection.environment(BLASKernelSelection.markerVariable) {
            #expect(BLASKernelSelection.tier(ofCore: forced) <= BLASKernelSelection.tier(of: .current))
        }
    }
}

@Suite struct BLASTests {
    @Test func sgemmAgainstHandComputedProducts() {
        // [1 2; 3 4] · [5 6; 7 8] = [19 22; 43 50]
        let a: [Float] = [1, 2, 3, 4], b: [Float] = [5, 6, 7, 8]
        var c = [Float](repeating: 0, count: 4)
        c.withUnsafeMutableBufferPointer { BLAS.sgemm(m: 2, n: 2, k: 2, a: a, lda: 2, b: b, ldb: 2, c: $0.baseAddress!, ldc: 2) }
        #expect(c == [19, 22, 43, 50])
        // Aᵀ·B = [1 3; 2 4]·[5 6; 7 8] = [26 30; 38 44]
        c.withUnsafeMutableBufferPointer { BLAS.sgemm(transA: true, m: 2, n: 2, k: 2, a: a, lda: 2, b: b, ldb: 2, c: $0.baseAddress!, ldc: 2) }
        #expect(c == [26, 30, 38, 44])
    }
}
