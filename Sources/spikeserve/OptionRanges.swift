import ArgumentParser
import SNN

/// Range checks for command-line options: every numeric option is checked in `validate()`, so a bad
/// value is a usage error naming the option and its valid range (exit 64), never a trap or a
/// silently useless result.
enum OptionRange {
    /// Largest time-step budget any command accepts (the server's per-model `max_timesteps` is at
    /// most this too).
    static let maxTimesteps = 4096
    /// Largest batch any command accepts.
    static let maxBatch = 4096
    /// Memory the engine may need for one image's frames before a command refuses to start.
    static let memoryLimitBytes = 8 << 30

    static func check<T: Comparable>(_ value: T, _ range: ClosedRange<T>, _ option: String) throws {
        guard range.contains(value) else {
            throw ValidationError("\(option) must be in \(range.lowerBound)...\(range.upperBound) (got \(value))")
        }
    }

    static func check<T: Comparable>(_ value: T?, _ range: ClosedRange<T>, _ option: String) throws {
        if let value { try check(value, range, option) }
    }

    static func check(_ value: String, oneOf choices: [String], _ option: String) throws {
        guard choices.contains(value) else {
            throw ValidationError("\(option) must be one of \(choices.joined(separator: ", ")) (got \(value))")
        }
    }

    static func timesteps(_ value: Int?, _ option: String = "--timesteps") throws {
        try check(value, 1...maxTimesteps, option)
    }

    /// Refuses a time-step budget whose frames for a single image would not fit the memory limit.
    static func memory(_ model: Model, timesteps: Int, option: String = "--timesteps") throws {
        let bytes = SpikingEngine.minimumBytes(for: model.description, timesteps: timesteps)
        guard bytes <= memoryLimitBytes else {
            throw ValidationError(
                String(
                    format: "%@ %d needs about %.1f GiB for one image of %@ (limit %d GiB); use fewer time steps",
                    option, timesteps, Double(bytes) / Double(1 << 30), model.description.name, memoryLimitBytes >> 30))
        }
    }
}
