import Foundation
import TensorKit

/// A training run's resumable state as one directory: the model files, the optimizer's buffers
/// (`optimizer.safetensors`) and the loop's own state (`trainer-state.json`), published atomically.
public enum TrainingCheckpoint {
    static let stateFile = "trainer-state.json"
    static let optimizerFile = "optimizer.safetensors"

    public static func save<State: Encodable>(model: Model, optimizer: OptimizerState, state: State, to directory: String) throws {
        var files = try model.encodedFiles()
        files[stateFile] = try JSONEncoder().encode(state)
        var buffers = optimizer.buffers.mapValues { Tensor(shape: [$0.count], scalars: $0) }
        buffers["__step__"] = Tensor(shape: [1], scalars: [Float(optimizer.step)])
        files[optimizerFile] = try SafeTensors.encode(buffers)
        try writeDirectoryAtomically(directory, files: files)
    }

    public static func load<State: Decodable>(_ type: State.Type, from directory: String) throws -> (
        model: Model, optimizer: OptimizerState, state: State
    ) {
        let model = try Model.load(from: directory)
        let state = try JSONDecoder().decode(State.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/" + stateFile)))
        var buffers = try SafeTensors.decode(Data(contentsOf: URL(fileURLWithPath: directory + "/" + optimizerFile))).tensors
        let step = Int(buffers.removeValue(forKey: "__step__")?.scalars.first ?? 0)
        return (model, OptimizerState(step: step, buffers: buffers.mapValues(\.scalars)), state)
    }

    public static func exists(at directory: String) -> Bool {
        FileManager.default.fileExists(atPath: directory + "/" + stateFile)
    }
}

/// Peak resident memory of this process so far, in bytes (getrusage's ru_maxrss).
public func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_maxrss * 1024
}
