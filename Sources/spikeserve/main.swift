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
    if var asyncCommand = command as? any AsyncParsableCommand {
        try await asyncCommand.run()
    } else {
        try command.run()
    }
} catch {
    SpikeServe.exit(withError: error)
}
