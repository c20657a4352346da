import SNN

/// The classify parameters, as JSON body fields, form fields or query parameters (the body's win).
public struct ClassifyParameters: Codable, Sendable, SchemaAnnotated {
    /// Time-step budget T; default the model's, at most its `max_timesteps`.
    public var timesteps: Int?
    public var topK: Int?
    /// Seed of the Poisson input, for reproducible results.
    public var seed: UInt64?
    /// Return the running prediction after every step.
    public var trace: Bool?
    /// Give up (504) when the images are not computed within this many milliseconds.
    public var deadlineMs: Int?
    /// Stop each image once its prediction is settled, up to the budget (the model's calibrated
    /// exit policy).
    public var adaptive: Bool?
    /// Override of the exit policy's threshold (implies adaptive).
    public var exitThreshold: Double?

    enum CodingKeys: String, CodingKey {
        case timesteps, seed, trace, adaptive
        case topK = "top_k", deadlineMs = "deadline_ms", exitThreshold = "exit_threshold"
    }

    public static let maxDeadlineMs = 3_600_000

    public static var schemaAnnotations: [String: JSONValue] {
        [
            "timesteps": ["minimum": 1, "description": "Time-step budget T (default: the model's; at most its max_timesteps)."],
            "top_k": ["minimum": 1],
            "seed": ["description": "Seed of the Poisson input, for reproducible results."],
            "trace": ["description": "Return the running prediction after every step."],
            "deadline_ms": ["minimum": 1, "maximum": .int(maxDeadlineMs)],
            "adaptive": ["description": "Stop each image once its prediction is settled (the model's calibrated exit policy), up to the budget."],
            "exit_threshold": ["description": "Override of the exit policy's threshold; implies adaptive."],
        ]
    }
}

/// The `application/json` body of a classify call: base64 images beside the parameters.
public struct ClassifyJSONBody: Codable, Sendable, SchemaAnnotated {
    public struct EncodedImage: Codable, Sendable, SchemaAnnotated {
        public var b64: String
        public static var schemaAnnotations: [String: JSONValue] {
            [
                "b64": [
                    "contentEncoding": "base64",
                    "description":
                        "The image file in base64 (standard or URL-safe alphabet, padding optional), or a data: URI such as data:image/jpeg;base64,...",
                ]
            ]
        }
    }

    public var images: [EncodedImage]
    /// The parameters, as fields beside `images`.
    public var parameters: ClassifyParameters

    enum CodingKeys: String, CodingKey { case images }

    public init(from decoder: any Decoder) throws {
        images = try decoder.container(keyedBy: CodingKeys.self).decode([EncodedImage].self, forKey: .images)
        parameters = try ClassifyParameters(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(images, forKey: .images)
        try parameters.encode(to: encoder)
    }

    public static var schemaAnnotations: [String: JSONValue] {
        var notes = ClassifyParameters.schemaAnnotations
        notes["images"] = ["minItems": 1]
        return notes
    }
}

/// `POST /v1/models/{name}/classify`: one result per image, in the order sent.
public struct ClassifyResponse: Codable, Sendable {
    public struct Timings: Codable, Sendable {
        /// Milliseconds from the request's arrival to the answer.
        public var total: Double
    }

    public var model: String
    public var modelVersion: Int
    public var requestID: String
    public var timesteps: Int
    /// The Poisson seed used (a string: it may exceed JSON's exact integers).
    public var seed: String
    public var results: [ClassifyResult]
    public var timingsMs: Timings

    enum CodingKeys: String, CodingKey {
        case model, timesteps, seed, results
        case modelVersion = "model_version", requestID = "request_id", timingsMs = "timings_ms"
    }
}

/// The prediction for one image, with what it cost.
public struct ClassifyResult: Codable, Sendable, SchemaAnnotated {
    public struct Prediction: Codable, Sendable {
        public var label: String
        public var index: Int
        /// Softmax of the mean output potential per time step.
        public var score: Double
    }

    public struct Timings: Codable, Sendable {
        public var decode: Double
        public var queue: Double
        public var compute: Double
        /// Images computed together with this one.
        public var batchSize: Int
        enum CodingKeys: String, CodingKey {
            case decode, queue, compute
            case batchSize = "batch_size"
        }
    }

    /// The running prediction after one time step.
    public struct TraceStep: Codable, Sendable {
        public var step: Int
        public var decided: Bool
        public var index: Int?
        public var label: String?
        public var scores: [Double]
    }

    public var decided: Bool
    public var predictions: [Prediction]
    /// Steps this image ran: the budget, or fewer when adaptive steps stopped it.
    public var timestepsUsed: Int
    /// Why it stopped: `settled` (adaptive) or `budget`.
    public var exit: ExitReason
    /// Spikes emitted by all neurons over all time steps.
    public var spikeCount: Int
    /// Synaptic operations: one per spike and outgoing synapse.
    public var synapticOps: Int
    /// Per spiking layer: spikes per neuron per time step.
    public var spikeRates: [Double]
    public var timingsMs: Timings
    public var trace: [TraceStep]?

    enum CodingKeys: String, CodingKey {
        case decided, predictions, trace, exit
        case timestepsUsed = "timesteps_used", spikeCount = "spike_count", synapticOps = "synaptic_ops"
        case spikeRates = "spike_rates", timingsMs = "timings_ms"
    }

    public static var schemaAnnotations: [String: JSONValue] {
        [
            "decided": [
                "description":
                    "False when the output potentials decided nothing (equal top potentials, e.g. too few time steps); predictions is then empty."
            ]
        ]
    }
}

extension ClassifyParameters {
    /// The parameters as query parameters, with the schemas derived for the JSON fields.
    static var queryParameters: [APIOperation.QueryParameter] {
        guard case .object(let fields) = JSONSchema.of(ClassifyParameters.self),
            case .object(let properties)? = fields.first(where: { $0.0 == "properties" })?.1
        else { return [] }
        return properties.map { APIOperation.QueryParameter($0.0, $0.1) }
    }
}

extension ExitReason: SchemaDescribing {}
