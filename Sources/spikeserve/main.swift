import ArgumentParser
import NativeBridge

// Must run before anything else: OpenBLAS picked its kernel when it loaded, so choosing a better
// one means re-executing this binary with OPENBLAS_CORETYPE set.
BLASKernelSelection.reexecIfNeeded()
MemoryTuning.keepLargeAllocations()

// What AsyncParsableCommand.main() does; called by hand because a top-level `main.swift` cannot
// carry the availability attribute that its generated check asks for.
do {
    var command = try SpikeServe.parseAsRoot()
    // Dispatch to the async entry point by name: on an existential, `run()` resolves to the
    // synchronous default that only prints help.
    if let serve = command as? ServeCommand {
        try await serve.serve()
    } else {
        try command.run()
    }
} catch {
    SpikeServe.exit(withError: error)
}
