#if canImport(Glibc)
    import Glibc
#endif

/// Chooses the OpenBLAS kernel ("core type") for this CPU.
///
/// Debian's OpenBLAS 0.3.21 does not recognise some newer CPUs (e.g. AMD Zen 4 with AVX-512) and
/// falls back to the generic "Prescott" SSE3 kernels, about 5× slower for sgemm. OpenBLAS reads
/// `OPENBLAS_CORETYPE` once, when the library is loaded — before `main` runs, since we link it — so
/// the only way to change the kernel of a running process is to set the variable and re-exec.
public enum BLASKernelSelection {
    /// Environment variable OpenBLAS reads to force a kernel.
    public static let coreTypeVariable = "OPENBLAS_CORETYPE"
    /// Set by the re-exec so the child never loops and can report what happened.
    public static let markerVariable = "SPIKESERVE_BLAS_AUTOSELECTED"
    /// Set to 0 to keep OpenBLAS's own detection.
    public static let disableVariable = "SPIKESERVE_BLAS_AUTOSELECT"

    /// Vector-width tier of a kernel or CPU: 3 = AVX-512, 2 = AVX2+FMA, 1 = AVX, 0 = SSE only.
    public static func tier(of features: CPUFeatures) -> Int {
        if features.avx512f && features.avx512dq && features.avx512cd && features.avx512bw
            && features.avx512vl
        {
            return 3
        }
        if features.avx2 && features.fma { return 2 }
        return features.avx ? 1 : 0
    }

    /// Tier of an OpenBLAS core name; unknown names count as 0 (generic), so we only ever replace
    /// a kernel we know to be narrower than what the CPU offers.
    public static func tier(ofCore name: String) -> Int {
        switch name.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": 3
        case "haswell", "zen", "skylake": 2
        case "sandybridge", "bulldozer", "piledriver", "steamroller", "excavator": 1
        default: 0
        }
    }

    /// The kernel to force for a CPU of this tier, or nil to leave OpenBLAS's own choice.
    /// Only kernels whose instructions the CPU and OS both support are ever returned.
    public static func coreType(forTier tier: Int) -> String? {
        switch tier {
        case 3: "SkylakeX"
        case 2: "Haswell"
        case 1: "Sandybridge"
        default: nil
        }
    }

    /// How the kernel of this process was chosen, for `spikeserve system`.
    public static var selection: String {
        if let chosen = environment(markerVariable) { return "automatic (\(chosen))" }
        if let user = environment(coreTypeVariable) { return "user (\(coreTypeVariable)=\(user))" }
        if environment(disableVariable) == "0" { return "disabled (library default)" }
        return "library default (already the CPU's best tier)"
    }

    /// Re-executes the current process with `OPENBLAS_CORETYPE` set when the kernel OpenBLAS chose
    /// at load time is of a lower tier than the CPU supports (e.g. "Prescott" on an AVX-512 CPU it
    /// does not recognise). Does nothing if the user set the variable, disabled selection
    /// (`SPIKESERVE_BLAS_AUTOSELECT=0`), or this is already the re-exec.
    /// Call first thing in `main`, before any thread starts. Returns only if no re-exec happened.
    public static func reexecIfNeeded(features: CPUFeatures = .current) {
        guard environment(coreTypeVariable) == nil, environment(markerVariable) == nil,
            environment(disableVariable) != "0",
            tier(ofCore: BLAS.coreName) < tier(of: features),
            let core = coreType(forTier: tier(of: features))
        else { return }
        setenv(coreTypeVariable, core, 1)
        setenv(markerVariable, core, 1)
        // /proc/self/exe is the running binary even if argv[0] is relative or on PATH.
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // exec failed (e.g. no /proc): carry on with the library's own kernel.
        unsetenv(coreTypeVariable)
        unsetenv(markerVariable)
    }

    static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        return String(cString: value)
    }
}
