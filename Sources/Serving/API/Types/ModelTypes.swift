import SNN

/// `GET /healthz`.
public struct Health: Codable, Sendable {
    public var status = "ok"
}

/// `GET /readyz`: `ready` with 200, `not_ready` with 503 (the rule is in `ServingAPI.readiness`).
public struct Readiness: Codable, Sendable {
    public var status: String
    /// Each model's state: ready, loading, failed or no_default_version.
    public var models: [String: String]
    /// Models whose default version cannot serve, and why; absent when there are none.
    public var problems: [String: String]?
}

/// `GET /v1/models`.
public struct ModelList: Codable, Sendable {
    public var models: [ModelSummary]
}

/// One model in `GET /v1/models`; the fields of its default version are `null` while none loads.
public struct ModelSummary: Codable, Sendable {
    public var name: String
    @Nullable public var defaultVersion: Int?
    public var versions: [Int]
    @Nullable public var architecture: String?
    @Nullable public var defaultTimesteps: Int?
    public var ready: Bool

    enum CodingKeys: String, CodingKey {
        case name, versions, architecture, ready
        case defaultVersion = "default_version", defaultTimesteps = "default_timesteps"
    }
}

/// `GET /v1/models/{name}`: the default version's description. Only `name`, `default_version`,
/// `versions` and `ready` are present while no version can serve.
public struct ModelDetail: Codable, Sendable {
    public var name: String
    public var architecture: String?
    public var input: InputDescription?
    public var labels: [String]?
    public var defaultTimesteps: Int?
    public var maxTimesteps: Int?
    public var encoding: SNNConfig.Encoding?
    /// Membrane leak per time step (1 = integrate-and-fire).
    public var leak: Double?
    /// Firing threshold θ of each spiking layer, in units of the layer's input current.
    public var thresholds: [Double]?
    /// Membrane potential before the first step, as a fraction of the threshold (absent: 0).
    public var initialMembrane: Double?
    /// The calibrated rule of adaptive time steps (absent: not calibrated).
    public var exitPolicy: ExitPolicy?
    @Nullable public var defaultVersion: Int?
    public var versions: [VersionInfo]
    public var accuracies: [String: Double]?
    public var ready: Bool

    enum CodingKeys: String, CodingKey {
        case name, architecture, input, labels, encoding, leak, thresholds, versions, accuracies, ready
        case defaultTimesteps = "default_timesteps", maxTimesteps = "max_timesteps", defaultVersion = "default_version"
        case initialMembrane = "initial_membrane", exitPolicy = "exit_policy"
    }
}

/// One version of a model: loaded and ready, or failed to load (with the reason).
public struct VersionInfo: Codable, Sendable {
    public enum State: String, Codable, Sendable, CaseIterable, SchemaDescribing { case ready, failed }

    public var version: Int
    public var `default`: Bool
    public var state: State
    @Nullable public var createdAt: String?
    @Nullable public var baseModel: String?
    public var accuracies: [String: Double]?
    /// Why the version failed to load.
    public var error: String?

    enum CodingKeys: String, CodingKey {
        case version, `default`, state, accuracies, error
        case createdAt = "created_at", baseModel = "base_model"
    }
}

/// `GET /v1/models/{name}/versions`.
public struct VersionList: Codable, Sendable {
    public var model: String
    public var versions: [VersionInfo]
}

/// `PUT /v1/models/{name}/default`.
public struct SetDefaultRequest: Codable, Sendable, SchemaAnnotated {
    public var version: Int
    public static var schemaAnnotations: [String: JSONValue] { ["version": ["minimum": 1]] }
}

extension SNNConfig.Encoding: SchemaDescribing {}
extension ExitPolicy.Rule: SchemaDescribing {}
