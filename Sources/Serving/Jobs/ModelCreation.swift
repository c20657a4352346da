import Foundation
import Imaging
import ModelImport
import SNN

/// `POST /v1/models`: an ANN trained elsewhere (an ONNX file, or a PyTorch state dict as
/// safetensors with `arch`) becomes a served model through a conversion job, optionally followed
/// by a fine-tuning job. The file is the request body; everything else is in the query, so that a
/// user with curl sends `--data-binary @model.onnx` and a URL.
public struct ModelCreationRequest: Sendable {
    /// Name of the new model: letters, digits, `.`, `_`, `-`, at most 64, not taken.
    public var name: String
    /// Safetensors only: the built-in architecture the state dict is for.
    public var architecture: String?
    /// Class names in output order (default: the calibration data's class folders when their
    /// number matches the outputs, else "0" … "K-1").
    public var labels: [String]?
    public var mean: [Float]?
    public var std: [Float]?
    /// ONNX only: `[C, H, W]` when the graph's input dimensions are symbolic.
    public var inputSize: [Int]?
    /// Calibration (and validation) images: an uploaded dataset id or a path under the data root.
    public var calibrationData: String
    /// Fraction of the calibration data held out to validate the converted model. Default 0.1.
    public var validationSplit = 0.1
    public var conversion = JobRecord.ConversionParameters(source: "onnx")
    /// A fine-tuning job on the same data once the converted model serves (nil: none).
    public var fineTuneAfter: JobRecord.Hyperparameters?
    public var seed: UInt64 = 0

    /// The query parameters, documented in the OpenAPI document (`queryParameters`).
    static let queryParameters: [(name: String, schema: JSONValue, description: String)] = [
        ("name", ["type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"], "Name of the new model (required)"),
        ("calibration_data", ["type": "string"], "Dataset id (ds_…) or path under --data-root: calibration and validation images (required)"),
        ("arch", ["type": "string"], "Safetensors state dicts: the architecture (\(Architectures.names.joined(separator: ", ")))"),
        ("labels", ["type": "string"], "Class names in output order, comma-separated"),
        ("mean", ["type": "string"], "Per-channel mean of pixels in [0, 1], comma-separated"),
        ("std", ["type": "string"], "Per-channel standard deviation, comma-separated"),
        ("input_size", ["type": "string"], "ONNX: C,H,W when the graph's input is symbolic"),
        ("validation_split", ["type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1], "Held out for validation (default 0.1)"),
        ("timesteps", ["type": "integer", "minimum": 1, "maximum": 4096], "Default time steps of the converted model (default 32)"),
        ("scale", ["type": "number", "exclusiveMinimum": 0, "maximum": 10], "Threshold scale (default 0.7)"),
        ("calibration_images", ["type": "integer", "minimum": 1, "maximum": 100_000], "Images thresholds are measured on (default 512)"),
        ("calibration_timesteps", ["type": "integer", "minimum": 1, "maximum": 1024], "Steps simulated while measuring (default 64)"),
        ("initial_membrane", ["type": "number", "minimum": 0, "maximum": 1], "Initial membrane as a fraction of θ (default 0.5)"),
        ("encoding", ["type": "string", "enum": ["direct", "poisson"]], "Input encoding (default direct)"),
        ("fine_tune_epochs", ["type": "integer", "minimum": 1, "maximum": 1000], "Queue a fine-tuning job of this many epochs afterwards"),
        ("fine_tune_timesteps", ["type": "integer", "minimum": 1, "maximum": 4096], "Its time-step budget (default: timesteps)"),
        ("fine_tune_learning_rate", ["type": "number", "exclusiveMinimum": 0, "maximum": 1], "Its learning rate (default 1e-4)"),
        ("seed", ["type": "integer", "minimum": 0], "Seed of the split and of the calibration subset"),
    ]

    /// Parses the query; errors name the parameter.
    init(query: [String: String]) throws(RequestError) {
        let known = Set(Self.queryParameters.map(\.name))
        if let unknown = query.keys.sorted().first(where: { !known.contains($0) }) {
            throw .invalidParameter("unknown query parameter '\(unknown)'")
        }
        guard let name = query["name"], Self.isValidName(name) else {
            throw .invalidParameter("name is required: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        }
        self.name = name
        guard let data = query["calibration_data"], !data.isEmpty else {
            throw .invalidParameter("calibration_data is required: a dataset id (POST /v1/datasets) or a path under the data root")
        }
        calibrationData = data
        architecture = query["arch"]
        labels = query["labels"].map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        mean = try Self.floats(query["mean"], "mean")
        std = try Self.floats(query["std"], "std")
        if let size = query["input_size"] {
            let parts = size.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard parts.count == 3, parts.allSatisfy({ (1...4096).contains($0) }) else { throw .invalidParameter("input_size must be C,H,W") }
            inputSize = parts
        }
        if (mean == nil) != (std == nil) || (mean?.count ?? 0) != (std?.count ?? 0) {
            throw .invalidParameter("mean and std go together, with one value per channel each")
        }
        if let std, std.contains(where: { !($0 > 0) }) { throw .invalidParameter("std values must be positive") }
        validationSplit = try Self.number(query["validation_split"], "validation_split", 1e-6...0.99) ?? validationSplit
        var c = JobRecord.ConversionParameters(source: architecture == nil ? "onnx" : "safetensors")
        c.timesteps = try Self.integer(query["timesteps"], "timesteps", 1...4096) ?? c.timesteps
        c.scale = Float(try Self.number(query["scale"], "scale", 1e-6...10) ?? Double(c.scale))
        c.calibrationImages = try Self.integer(query["calibration_images"], "calibration_images", 1...100_000) ?? c.calibrationImages
        c.calibrationTimesteps = try Self.integer(query["calibration_timesteps"], "calibration_timesteps", 1...1024) ?? c.calibrationTimesteps
        c.initialMembrane = Float(try Self.number(query["initial_membrane"], "initial_membrane", 0...1) ?? Double(c.initialMembrane))
        if let e = query["encoding"] {
            guard let encoding = SNNConfig.Encoding(rawValue: e) else { throw .invalidParameter("encoding must be direct or poisson") }
            c.encoding = encoding
        }
        conversion = c
        if let epochs = try Self.integer(query["fine_tune_epochs"], "fine_tune_epochs", 1...1000) {
            var hp = JobRecord.Hyperparameters()
            hp.epochs = epochs
            hp.timesteps = try Self.integer(query["fine_tune_timesteps"], "fine_tune_timesteps", 1...4096) ?? c.timesteps
            hp.learningRate = try Self.number(query["fine_tune_learning_rate"], "fine_tune_learning_rate", 1e-9...1) ?? hp.learningRate
            // The converted model accepts budgets up to max(512, timesteps).
            guard hp.timesteps <= max(512, c.timesteps) else {
                throw .invalidParameter("fine_tune_timesteps must be at most \(max(512, c.timesteps)) (the converted model's largest budget)")
            }
            fineTuneAfter = hp
        } else if query["fine_tune_timesteps"] != nil || query["fine_tune_learning_rate"] != nil {
            throw .invalidParameter("fine_tune_timesteps and fine_tune_learning_rate need fine_tune_epochs")
        }
        if let s = query["seed"] {
            guard let seed = UInt64(s) else { throw .invalidParameter("seed must be a non-negative integer") }
            self.seed = seed
        }
    }

    static func isValidName(_ name: String) -> Bool {
        guard let first = name.first, first.isASCII, first.isLetter || first.isNumber, name.count <= 64 else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
    }

    static func floats(_ text: String?, _ name: String) throws(RequestError) -> [Float]? {
        guard let text else { return nil }
        let values = text.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ $0?.isFinite == true }) else { throw .invalidParameter("\(name) must be comma-separated numbers") }
        return values.map { $0! }
    }

    static func number(_ text: String?, _ name: String, _ range: ClosedRange<Double>) throws(RequestError) -> Double? {
        guard let text else { return nil }
        guard let value = Double(text), range.contains(value) else { throw .invalidParameter("\(name) must be a number in \(range)") }
        return value
    }

    static func integer(_ text: String?, _ name: String, _ range: ClosedRange<Int>) throws(RequestError) -> Int? {
        guard let value = try queryInteger(text, name, min: range.lowerBound) else { return nil }
        guard value <= range.upperBound else { throw .invalidParameter("\(name) must be in \(range)") }
        return value
    }
}

extension JobManager {
    /// Checks what can be checked before the upload is read: the name is free and the
    /// calibration data resolves. Returns the data's class folders.
    func validateCreation(_ r: ModelCreationRequest) throws(JobError) -> [String] {
        guard store.entry(r.name) == nil, !isCreating(r.name) else { throw .modelExists(r.name) }
        if let arch = r.architecture, !Architectures.names.contains(arch) {
            throw .invalid("unknown arch '\(arch)'; known: \(Architectures.names.joined(separator: ", "))")
        }
        do { return try data.folder(r.calibrationData).classes } catch { throw .dataset(error) }
    }

    /// A conversion job for the model in the uploaded `file` (removed afterwards, whatever
    /// happens): imports it into the job's directory and queues the job. CPU work (parsing,
    /// weight decoding): call it off the cooperative pool.
    func createModel(_ r: ModelCreationRequest, file: String, dataClasses: [String]) throws(JobError) -> JobRecord {
        defer { try? FileManager.default.removeItem(atPath: file) }
        guard reserve(r.name) else { throw .modelExists(r.name) }
        defer { release(r.name) }
        guard store.entry(r.name) == nil else { throw .modelExists(r.name) }
        let id = "cvjob_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
        var ann: Model
        do {
            ann = try Self.importANN(r, file: file)
            // Default labels: the data's class folders when they fit the outputs.
            if r.labels == nil, ann.description.labels.count == dataClasses.count { ann.description.labels = dataClasses }
        } catch {
            throw .importFailed(error)
        }
        if r.fineTuneAfter != nil, ann.description.labels != dataClasses {
            throw .invalid(
                "fine-tuning needs the model's labels \(ann.description.labels) to be the data's class folders \(dataClasses)")
        }
        var conversion = r.conversion
        conversion.source = r.architecture == nil ? "onnx" : "safetensors"
        var hp = JobRecord.Hyperparameters()
        hp.timesteps = conversion.timesteps
        hp.epochs = 1
        var job = JobRecord(
            id: String(id), model: r.name, baseVersion: 0, status: .queued, createdAt: unixNow(), trainingData: r.calibrationData,
            validationData: nil, validationSplit: r.validationSplit, hyperparameters: hp, autoDeploy: true, minAccuracy: nil,
            force: true, resumable: false, seed: r.seed)
        job.object = .conversion
        job.conversion = conversion
        job.fineTuneAfter = r.fineTuneAfter
        let directory = queue.jobStore.importedModelDirectory(job.id)
        do {
            ann.description.name = r.name
            try ann.save(to: directory)
        } catch {
            try? FileManager.default.removeItem(atPath: queue.jobStore.jobDirectory(job.id))
            throw .storage("cannot store the imported model: \(error)")
        }
        do {
            try queue.enqueue(job, description: "job created: convert the imported \(conversion.source) model into '\(r.name)'")
        } catch {
            try? FileManager.default.removeItem(atPath: queue.jobStore.jobDirectory(job.id))
            throw error
        }
        return job
    }

    /// The ANN in `file`: safetensors when `arch` is given, ONNX otherwise.
    static func importANN(_ r: ModelCreationRequest, file: String) throws(ImportError) -> Model {
        var options = ImportOptions()
        options.name = r.name
        options.labels = r.labels
        options.inputSize = r.inputSize
        options.mean = r.mean
        options.std = r.std
        if let arch = r.architecture { return try StateDictImporter.importModel(at: file, architecture: arch, options: options) }
        // An upload is one file: external data files cannot come with it (and the upload
        // directory holds other requests' files, which it must not read).
        guard let data = FileManager.default.contents(atPath: file) else { throw .unreadable("the upload could not be read") }
        do {
            return try ONNXImporter.importModel(data, directory: nil, options: options)
        } catch .tensor(let name, let reason) where reason.contains("external data") {
            throw .tensor(name: name, reason: reason + "; over the API, save the model with its weights inside (onnx.save without external data)")
        }
    }

    /// After a conversion job deployed its model: queue the fine-tuning it asked for.
    func queueFineTuningAfter(_ job: JobRecord) {
        guard job.object == .conversion, let hp = job.fineTuneAfter else { return }
        let request = FineTuneJobRequest(
            model: job.model, trainingData: job.trainingData, validationSplit: job.validationSplit,
            hyperparameters: .init(timesteps: hp.timesteps, epochs: hp.epochs, learningRate: hp.learningRate), seed: job.seed)
        do {
            let next = try create(request)
            queue.update(job.id) { $0.result?.nextJob = next.id }
            queue.emit(job.id, type: "status", "queued fine-tuning job \(next.id)")
        } catch {
            queue.emit(job.id, level: "error", type: "status", "could not queue the fine-tuning job: \(error)")
        }
    }
}
