import Foundation
import SNN

/// A job as stored and as answered by the API (OpenAI's fine-tuning job shape): fine-tuning a
/// served model, or converting an imported ANN into a new model (`object` tells which).
public struct JobRecord: Codable, Sendable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case fineTuning = "fine_tuning.job", conversion = "conversion.job"
    }

    /// How a conversion job turns the imported ANN into an SNN (threshold balancing, the paper's
    /// step 2; see `Converter.Configuration`).
    public struct ConversionParameters: Codable, Sendable {
        /// The converted model's default time steps.
        public var timesteps = 32
        /// Threshold scale applied to each balanced maximum. Default 0.7.
        public var scale: Float = 0.7
        /// Training images the thresholds are measured on. Default 512.
        public var calibrationImages = 512
        /// Steps simulated while measuring. Default 64.
        public var calibrationTimesteps = 64
        /// Membrane potential before the first step, as a fraction of the threshold. Default 0.5.
        public var initialMembrane: Float = 0.5
        public var encoding: SNNConfig.Encoding = .direct
        /// What the ANN was imported from: "onnx" or "safetensors".
        public var source: String

        enum CodingKeys: String, CodingKey {
            case timesteps, scale, encoding, source
            case calibrationImages = "calibration_images", calibrationTimesteps = "calibration_timesteps"
            case initialMembrane = "initial_membrane"
        }

        public init(source: String) { self.source = source }
    }

    public enum Status: String, Codable, Sendable, CaseIterable {
        case validatingFiles = "validating_files", queued, running, cancelling, succeeded, failed, cancelled
        public var isTerminal: Bool { self == .succeeded || self == .failed || self == .cancelled }
    }

    public struct Hyperparameters: Codable, Sendable {
        public var timesteps: Int = 4
        public var epochs: Int = 1
        public var learningRate: Double = 1e-4
        public var batchSize: Int = 32
        public var surrogate: SurrogateKind = .linear
        public var alpha: Float = 0.3
        public var beta: Float = 0.01
        public var limit: Int?
        enum CodingKeys: String, CodingKey {
            case timesteps, epochs, surrogate, alpha, beta, limit
            case learningRate = "learning_rate", batchSize = "batch_size"
        }
        public init() {}
    }

    public struct Progress: Codable, Sendable {
        public var epoch = 0, totalEpochs = 0, step = 0, totalSteps = 0
        public var fraction = 0.0
        enum CodingKeys: String, CodingKey {
            case epoch, step, fraction
            case totalEpochs = "total_epochs", totalSteps = "total_steps"
        }
    }

    public struct Metrics: Codable, Sendable {
        public var trainLoss: Double?
        public var trainAccuracy: Double?
        public var valAccuracy: Double?
        enum CodingKeys: String, CodingKey {
            case trainLoss = "train_loss", trainAccuracy = "train_accuracy", valAccuracy = "val_accuracy"
        }
    }

    public struct Result: Codable, Sendable {
        public var modelVersion: Int?
        public var deployed: Bool
        public var valAccuracy: Double?
        public var baselineAccuracy: Double?
        /// A conversion job's follow-up fine-tuning job, once queued.
        public var nextJob: String?
        enum CodingKeys: String, CodingKey {
            case modelVersion = "model_version", deployed, valAccuracy = "val_accuracy", baselineAccuracy = "baseline_accuracy"
            case nextJob = "next_job"
        }
    }

    public struct Failure: Codable, Sendable {
        public var code: String
        public var message: String
    }

    public var id: String
    public var object: Kind = .fineTuning
    public var model: String
    public var baseVersion: Int
    public var status: Status
    public var createdAt: Int
    public var startedAt: Int?
    public var finishedAt: Int?
    public var estimatedFinish: Int?
    public var trainingData: String
    public var validationData: String?
    public var validationSplit: Double
    public var hyperparameters: Hyperparameters
    public var autoDeploy: Bool
    public var minAccuracy: Double?
    public var force: Bool
    public var progress = Progress()
    public var metrics = Metrics()
    public var result: Result?
    public var error: Failure?
    /// True when a crash interrupted the job and it can continue from its checkpoint.
    public var resumable: Bool
    public var seed: UInt64
    /// Conversion jobs: how the imported ANN is converted.
    public var conversion: ConversionParameters?
    /// Conversion jobs: the fine-tuning queued once the converted model serves (nil: none).
    public var fineTuneAfter: Hyperparameters?

    enum CodingKeys: String, CodingKey {
        case id, object, model, status, hyperparameters, progress, metrics, result, error, resumable, seed, force, conversion
        case fineTuneAfter = "fine_tune_after"
        case baseVersion = "base_version", createdAt = "created_at", startedAt = "started_at", finishedAt = "finished_at"
        case estimatedFinish = "estimated_finish", trainingData = "training_data", validationData = "validation_data"
        case validationSplit = "validation_split", autoDeploy = "auto_deploy", minAccuracy = "min_accuracy"
    }
}

/// One line of a job's event log.
public struct JobEvent: Codable, Sendable {
    public var id: Int
    public var object = "fine_tuning.job.event"
    public var createdAt: Int
    public var level: String
    public var type: String
    public var message: String
    public var data: [String: Double]?

    enum CodingKeys: String, CodingKey {
        case id, object, level, type, message, data
        case createdAt = "created_at"
    }
}

func unixNow() -> Int { Int(Date().timeIntervalSince1970) }
