import CBLAS
import CNative
import Dispatch
import Foundation

/// Cores available for numeric work.
public enum Parallelism {
    /// The cores this process may use: the machine's, or fewer when `SPIKESERVE_CORES` says so —
    /// a container's CPU limit, which the process cannot see as fewer processors (Kubernetes
    /// passes its limit through the downward API; see deploy/kubernetes). Every thread count
    /// SpikeServe derives (kernels, inference, decoding, training share) follows it.
    public static let machineCores: Int = {
        let processors = max(1, ProcessInfo.processInfo.activeProcessorCount)
        guard let text = ProcessInfo.processInfo.environment["SPIKESERVE_CORES"], let limit = Int(text), limit >= 1 else { return processors }
        return min(processors, limit)
    }()

    /// Cores the calling thread's kernels may use: all of them, unless the thread set a ceiling
    /// with `limitCurrentThread` (a background training job leaves cores to inference this way).
    public static var cores: Int {
        let limit = Int(sn_get_thread_core_limit())
        return limit > 0 ? min(limit, machineCores) : machineCores
    }

    public static func limitCurrentThread(to cores: Int) { sn_set_thread_core_limit(Int32(max(0, cores))) }
}

/// Thin, typed wrappers over the OpenBLAS calls SpikeServe uses. All matrices are row-major.
public enum BLAS {
    /// The kernel OpenBLAS runs, e.g. "SkylakeX" or "Prescott".
    public static var coreName: String { String(cString: openblas_get_corename()) }
    public static var threads: Int { Int(openblas_get_num_threads()) }
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(n)) }
    public static var config: String { String(cString: openblas_get_config()) }

    /// C[m×n] = alpha · op(A) · op(B) + beta · C, row-major, on all cores.
    /// `lda`, `ldb`, `ldc` are the row strides of A, B, C as stored (before transposition).
    ///
    /// SpikeServe runs OpenBLAS single-threaded and splits each large GEMM into one block of C per
    /// core itself (columns when C is wide, rows otherwise). OpenBLAS's own thread pool busy-waits
    /// with sched_yield between calls, and beside our Dispatch workers that cost about a quarter of
    /// fine-tuning time in context switches (measured with perf); one scheduler for both removes it.
    public static func sgemm(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        _ = singleThreadedLibrary
        let parts = Parallelism.cores
        // Below ~2 MFLOP a split costs more than it saves.
        guard parts > 1, m * n * k >= 1 << 20 else {
            sgemmSerial(
                transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                beta: beta, c: c, ldc: ldc)
            return
        }
        let job = GemmJob(
            transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
            beta: beta, c: c, ldc: ldc)
        DispatchQueue.concurrentPerform(iterations: parts) { part in job.run(part: part, of: parts) }
    }

    /// Makes OpenBLAS single-threaded once, before the first GEMM: `sgemm` parallelises itself.
    static let singleThreadedLibrary: Void = { openblas_set_num_threads(1) }()

    /// One GEMM's operands, split by block of C (`@unchecked`: every part writes a disjoint block).
    struct GemmJob: @unchecked Sendable {
        let transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float
        let a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int
        let beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int

        func run(part: Int, of parts: Int) {
            if n >= m {
                // Columns j0..<j1 of C need columns j0..<j1 of op(B).
                let j0 = n * part / parts, j1 = n * (part + 1) / parts
                guard j1 > j0 else { return }
                let bPart = transB ? b + j0 * ldb : b + j0
                BLAS.sgemmSerial(
                    transA: transA, transB: transB, m: m, n: j1 - j0, k: k, alpha: alpha, a: a, lda: lda,
                    b: bPart, ldb: ldb, beta: beta, c: c + j0, ldc: ldc)
            } else {
                // Rows i0..<i1 of C need rows i0..<i1 of op(A).
                let i0 = m * part / parts, i1 = m * (part + 1) / parts
                guard i1 > i0 else { return }
                let aPart = transA ? a + i0 : a + i0 * lda
                BLAS.sgemmSerial(
                    transA: transA, transB: transB, m: i1 - i0, n: n, k: k, alpha: alpha, a: aPart, lda: lda,
                    b: b, ldb: ldb, beta: beta, c: c + i0 * ldc, ldc: ldc)
            }
        }
    }

    /// One OpenBLAS call on the calling thread.
    @inlinable
    public static func sgemmSerial(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c,
            blasint(ldc))
    }

    /// y = alpha · x + y
    @inlinable
    public static func saxpy(n: Int, alpha: Float, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        cblas_saxpy(blasint(n), alpha, x, 1, y, 1)
    }
}
