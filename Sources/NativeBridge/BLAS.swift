import CBLAS

/// Thin, typed wrappers over the OpenBLAS calls SpikeServe uses. All matrices are row-major.
public enum BLAS {
    /// The kernel OpenBLAS runs, e.g. "SkylakeX" or "Prescott".
    public static var coreName: String { String(cString: openblas_get_corename()) }
    public static var threads: Int { Int(openblas_get_num_threads()) }
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(n)) }
    public static var config: String { String(cString: openblas_get_config()) }

    /// C[m×n] = alpha · op(A) · op(B) + beta · C, row-major.
    /// `lda`, `ldb`, `ldc` are the row strides of A, B, C as stored (before transposition).
    @inlinable
    public static func sgemm(
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
