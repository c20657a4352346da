import SNN
import TensorKit

/// The inference thread's engines, one per model version, run in place.
///
/// An engine's workspace grows to the largest batch it has run (tens of MB at batch 32). Copying
/// an engine out of a dictionary, running it and storing it back used to share that workspace
/// between two copies, so every later run duplicated it first: after one burst of load, a lone
/// request cost 20+ ms instead of 3 ms and the process kept the extra memory. Running through
/// the dictionary's in-place accessor keeps exactly one owner.
struct EngineCache {
    private var engines: [String: SpikingEngine] = [:]
    /// Versions kept; past it the cache starts over (versions are rarely more than a few).
    let capacity = 8

    static func key(_ version: ModelStore.Version) -> String { "\(version.name)/\(version.number)" }

    mutating func run(_ input: Tensor, version: ModelStore.Version, options: SpikingEngine.Options) throws -> SpikingEngine.Result {
        let key = Self.key(version)
        if engines[key] == nil {
            if engines.count >= capacity { engines.removeAll() }
            engines[key] = try SpikingEngine(model: version.model)
        }
        return engines[key]!.run(input, options: options)
    }

    /// Floats of scratch the version's engine has allocated so far (nil before its first run).
    func allocatedScratchFloats(_ version: ModelStore.Version) -> Int? {
        engines[Self.key(version)]?.workspace.allocatedFloats
    }
}
