import HTTPServer

/// The one place where domain errors become HTTP answers.
extension APIError {
    /// The answer for `error`, or nil when it is not one of the API's domain errors (a bug: the
    /// caller answers 500 and logs it).
    public init?(mapping error: any Error) {
        switch error {
        case let e as APIError: self = e
        case let e as RequestError: self = Self.map(e)
        case let e as AuthFailure: self = Self.map(e)
        case let e as ClassifyError: self = Self.map(e)
        case let e as ModelStore.StoreError: self = Self.map(e)
        case let e as InferenceScheduler.Failure: self = Self.map(e)
        case let e as DecodePool.Failure: self = Self.map(e)
        case let e as JobError: self = Self.map(e)
        case let e as DatasetError: self = Self.map(e)
        default: return nil
        }
    }

    static let retrySoon = [("Retry-After", "1")]

    static func map(_ e: RequestError) -> APIError {
        switch e {
        case .invalidJSON(let m): APIError(400, .invalidJSON, m)
        case .invalidParameter(let m): APIError(400, .invalidParameter, m)
        case .badRequest(let m): APIError(400, .badRequest, m)
        case .unsupportedMediaType(let m): APIError(415, .unsupportedMediaType, m)
        case .notFound(let m): APIError(404, .notFound, m)
        case .conflict(let m): APIError(409, .conflict, m)
        }
    }

    static func map(_ e: AuthFailure) -> APIError {
        switch e {
        case .adminDisabled:
            APIError(
                403, .adminDisabled,
                "admin endpoints are disabled: start the server with SPIKESERVE_ADMIN_TOKEN set (or --tokens FILE) to enable them")
        case .missingToken(let m): APIError(401, .unauthorized, m, headers: [("WWW-Authenticate", "Bearer realm=\"spikeserve\"")])
        case .invalidToken: APIError(401, .unauthorized, "invalid token", headers: [("WWW-Authenticate", "Bearer realm=\"spikeserve\"")])
        case .wrongScope: APIError(403, .forbidden, "the inference token cannot use admin endpoints")
        }
    }

    static func map(_ e: ClassifyError) -> APIError {
        switch e {
        case .notReady(let model): APIError(503, .notReady, "model '\(model)' is still loading", headers: retrySoon)
        case .tooManyImages(let count, let limit): APIError(413, .tooManyImages, "\(count) images in one request; the limit is \(limit)")
        case .invalidImage(let m): APIError(400, .invalidImage, m)
        case .deadlineExceeded(let ms): APIError(504, .deadlineExceeded, "the request did not finish within deadline_ms=\(ms)")
        }
    }

    static func map(_ e: ModelStore.StoreError) -> APIError {
        switch e {
        case .unknownModel, .unknownVersion: APIError(404, .notFound, e.description)
        case .brokenVersion: APIError(503, .versionUnavailable, e.description)
        case .io: APIError(500, .internal, e.description)
        }
    }

    static func map(_ e: InferenceScheduler.Failure) -> APIError {
        switch e {
        case .queueFull(let limit): APIError(429, .queueFull, "the inference queue is full (\(limit) images); retry shortly", headers: retrySoon)
        case .deadlineExceeded: APIError(504, .deadlineExceeded, "the request did not finish within its deadline")
        case .shuttingDown: APIError(503, .shuttingDown, "the server is shutting down")
        case .cancelled: APIError(503, .cancelled, "the request was cancelled before its images were computed")
        }
    }

    static func map(_ e: DecodePool.Failure) -> APIError {
        switch e {
        case .busy(let pixels, let limit):
            APIError(503, .decodeBusy, "decoding \(pixels) more pixels would exceed \(limit) in flight; retry shortly", headers: retrySoon)
        case .stopped: APIError(503, .shuttingDown, "the server is shutting down")
        }
    }

    static func map(_ e: JobError) -> APIError {
        switch e {
        case .invalid(let m): APIError(400, .badRequest, m)
        case .invalidModel(let m): APIError(400, .invalidModel, m)
        case .unknownJob(let id): APIError(404, .notFound, "job \(id) does not exist")
        case .notCancellable(let id, let status): APIError(409, .conflict, "job \(id) already \(status.rawValue)")
        case .notResumable(let id, let status): APIError(409, .conflict, "job \(id) is \(status.rawValue) and not resumable")
        case .queueFull(let limit): APIError(429, .tooManyJobs, "\(limit) jobs are already queued", headers: [("Retry-After", "60")])
        case .storage(let m): APIError(500, .internal, m)
        case .dataset(let d): map(d)
        case .modelExists(let name): APIError(409, .modelExists, "model '\(name)' exists or is being created; choose another name")
        case .importFailed(let e): APIError(400, .invalidModelFile, e.description)
        case .onWorker(let url):
            APIError(
                421, .wrongRole,
                "this replica serves inference only (--role inference); jobs, datasets and model creation are on the worker"
                    + (url.map { " at \($0)" } ?? ""))
        }
    }

    static func map(_ e: DatasetError) -> APIError {
        switch e {
        case .emptyArchive: APIError(400, .invalidArchive, "empty body: send a .tar or .tar.gz of an ImageFolder")
        case .invalidArchive(let m): APIError(400, .invalidArchive, m)
        case .invalidDataset(let m): APIError(400, .invalidDataset, m)
        case .reference(let m): APIError(400, .badRequest, m)
        case .tooLarge(let m): APIError(413, .archiveTooLarge, m)
        case .noSpace(let m): APIError(507, .insufficientStorage, m)
        case .storage(let m): APIError(500, .internal, m)
        }
    }
}
