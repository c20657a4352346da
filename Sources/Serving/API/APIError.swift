import HTTPServer

/// An error answer: `{"error": {"code": "...", "message": "..."}}` with its status and headers.
/// Handlers throw their modules' domain errors; `APIError(mapping:)` (ErrorMapping.swift) is the
/// one place that turns them into statuses and codes.
public struct APIError: Error, Sendable {
    /// Every `error.code` the API answers with (the HTTP core's own refusals, such as
    /// `header_too_large`, come from the HTTPServer module).
    public enum Code: String, Codable, Sendable, CaseIterable, SchemaDescribing {
        case badRequest = "bad_request", invalidJSON = "invalid_json", invalidParameter = "invalid_parameter"
        case invalidImage = "invalid_image", invalidModel = "invalid_model", invalidDataset = "invalid_dataset"
        case invalidArchive = "invalid_archive", invalidFiles = "invalid_files"
        case unauthorized, forbidden, adminDisabled = "admin_disabled", notFound = "not_found", conflict
        case unsupportedMediaType = "unsupported_media_type", tooManyImages = "too_many_images"
        case archiveTooLarge = "archive_too_large", insufficientStorage = "insufficient_storage"
        case queueFull = "queue_full", tooManyJobs = "too_many_jobs", decodeBusy = "decode_busy"
        case notReady = "not_ready", versionUnavailable = "version_unavailable", shuttingDown = "shutting_down"
        case cancelled, deadlineExceeded = "deadline_exceeded"
        case loadFailed = "load_failed", trainingFailed = "training_failed", validationFailed = "validation_failed"
        case invalidModelFile = "invalid_model_file", modelExists = "model_exists", conversionFailed = "conversion_failed"
        case wrongRole = "wrong_role"
        case `internal`
    }

    public var status: Int
    public var code: Code
    public var message: String
    public var headers: [(String, String)] = []

    public init(_ status: Int, _ code: Code, _ message: String, headers: [(String, String)] = []) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    /// The body of every error answer.
    public struct Body: Codable, Sendable {
        public struct Detail: Codable, Sendable {
            public var code: Code
            public var message: String
        }
        public var error: Detail
    }

    public var response: HTTPResponse {
        var r = HTTPResponse.json(status, Body(error: .init(code: code, message: message)))
        for (k, v) in headers { r.headers.set(k, v) }
        return r
    }
}

/// What is wrong with a request as sent, found before any model work.
public enum RequestError: Error, Sendable {
    /// The body is not JSON, or not of the endpoint's shape.
    case invalidJSON(String)
    case invalidParameter(String)
    case badRequest(String)
    case unsupportedMediaType(String)
    case notFound(String)
    /// The change asked for conflicts with the current state (e.g. a broken version as default).
    case conflict(String)
}
