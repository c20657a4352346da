import SNN

/// `POST /v1/fine_tuning/jobs`: what to fine-tune, on which data, and how.
public struct FineTuneJobRequest: Codable, Sendable, SchemaAnnotated {
    /// Hyperparameters a request may set; absent ones take the defaults of `JobRecord.Hyperparameters`
    /// (`timesteps`: the model's default T).
    public struct Hyperparameters: Codable, Sendable, SchemaAnnotated {
        public var timesteps: Int?
        public var epochs: Int?
        public var learningRate: Double?
        public var batchSize: Int?
        public var surrogate: SurrogateKind?
        public var alpha: Double?
        public var beta: Double?
        public var limit: Int?

        enum CodingKeys: String, CodingKey {
            case timesteps, epochs, surrogate, alpha, beta, limit
            case learningRate = "learning_rate", batchSize = "batch_size"
        }

        static let epochRange = 1...1000, batchSizeRange = 1...1024, limitRange = 1...100_000_000
        static let learningRateRange = 1e-9...1.0, alphaRange = 1e-6...100.0, betaRange = 0.0...100.0

        public static var schemaAnnotations: [String: JSONValue] {
            [
                "timesteps": ["minimum": 1], "epochs": bounds(epochRange), "batch_size": bounds(batchSizeRange),
                "limit": bounds(limitRange), "learning_rate": bounds(learningRateRange), "alpha": bounds(alphaRange),
                "beta": bounds(betaRange),
            ]
        }
    }

    public var model: String
    /// A path under the data root (ImageFolder directory, .tar or .tar.gz) or an uploaded dataset id (ds_…).
    public var trainingData: String
    public var validationData: String?
    /// Fraction of the training data held out for validation when `validation_data` is absent.
    public var validationSplit: Double?
    public var hyperparameters: Hyperparameters?
    /// Make the new version the default when it validates (default true).
    public var autoDeploy: Bool?
    /// Refuse to deploy below this validation accuracy.
    public var minAccuracy: Double?
    /// Deploy even when the new version validates below the current one.
    public var force: Bool?
    public var seed: UInt64?

    enum CodingKeys: String, CodingKey {
        case model, hyperparameters, force, seed
        case trainingData = "training_data", validationData = "validation_data", validationSplit = "validation_split"
        case autoDeploy = "auto_deploy", minAccuracy = "min_accuracy"
    }

    public static var schemaAnnotations: [String: JSONValue] {
        [
            "training_data": ["description": "Path under --data-root (ImageFolder directory, .tar or .tar.gz) or an uploaded dataset id (ds_…)"],
            "validation_split": ["exclusiveMinimum": 0, "exclusiveMaximum": 1],
            "min_accuracy": ["minimum": 0, "maximum": 1],
        ]
    }
}

/// JSON Schema bounds of a closed range.
func bounds(_ r: ClosedRange<Int>) -> JSONValue { ["minimum": .int(r.lowerBound), "maximum": .int(r.upperBound)] }
func bounds(_ r: ClosedRange<Double>) -> JSONValue { ["minimum": .double(r.lowerBound), "maximum": .double(r.upperBound)] }

/// `GET /v1/fine_tuning/jobs`: newest first, paged by `after`.
public struct JobList: Codable, Sendable {
    public var object = "list"
    public var data: [JobRecord]
    public var hasMore: Bool
    enum CodingKeys: String, CodingKey { case object, data, hasMore = "has_more" }
}

/// `GET /v1/fine_tuning/jobs/{id}/events`.
public struct EventList: Codable, Sendable {
    public var object = "list"
    public var data: [JobEvent]
    public var hasMore: Bool
    enum CodingKeys: String, CodingKey { case object, data, hasMore = "has_more" }
}

/// A job's epoch checkpoint on disk.
public struct CheckpointInfo: Codable, Sendable {
    public enum Kind: String, Codable, Sendable, CaseIterable, SchemaDescribing { case latest, best }
    public var kind: Kind
    public var path: String
    /// ISO 8601 time of the checkpoint's last write.
    public var updatedAt: String
    enum CodingKeys: String, CodingKey { case kind, path, updatedAt = "updated_at" }
}

/// `GET /v1/fine_tuning/jobs/{id}/checkpoints`.
public struct CheckpointList: Codable, Sendable {
    public var object = "list"
    public var data: [CheckpointInfo]
}

/// `POST /v1/datasets`: an uploaded ImageFolder, validated and usable as `training_data`.
public struct DatasetInfo: Codable, Sendable {
    public var id: String
    public var object = "dataset"
    public var classes: [String]
    public var images: Int
    /// Size of the uploaded archive.
    public var bytes: Int
    /// Unix time, seconds.
    public var createdAt: Int
    enum CodingKeys: String, CodingKey { case id, object, classes, images, bytes, createdAt = "created_at" }
}

extension JobRecord.Status: SchemaDescribing {}
extension JobRecord.Kind: SchemaDescribing {}
extension SurrogateKind: SchemaDescribing {}
