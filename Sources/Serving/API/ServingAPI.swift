import Foundation
import HTTPServer
import Imaging
import Logging
import SNN
import TensorKit

/// The REST API: models, versions and classification. Routes are registered on an HTTPServer
/// `Router`; every handler passes through `endpoint`, which applies the scope's auth check, turns
/// thrown `APIError`s into JSON error answers and records metrics under the route's pattern.
public final class ServingAPI: Sendable {
    public struct Configuration: Sendable {
        /// Largest image accepted, in pixels (checked from the header before decoding).
        public var maxImagePixels = ImageDecoder.defaultMaxPixels
        /// Most images in one request.
        public var maxImagesPerRequest = 64
        public init() {}
    }

    public let store: ModelStore
    public let scheduler: InferenceScheduler
    /// Where request images are decoded (never on the handlers' threads).
    public let decoder: DecodePool
    public let tokens: AccessTokens
    public let metrics: ServingMetrics
    public let configuration: Configuration
    let logger: Logger

    public init(
        store: ModelStore, scheduler: InferenceScheduler, decoder: DecodePool = DecodePool(), tokens: AccessTokens,
        metrics: ServingMetrics, configuration: Configuration = .init(), logger: Logger
    ) {
        self.store = store
        self.scheduler = scheduler
        self.decoder = decoder
        self.tokens = tokens
        self.metrics = metrics
        self.configuration = configuration
        self.logger = logger
    }

    public enum Access: Sendable { case open, inference, admin }

    /// The routes' OpenAPI description, filled in as routes register.
    public let document = OpenAPIDocument()

    /// Registers `body` for `method` and `pattern` behind `endpoint` (auth, error mapping, metrics)
    /// and describes it in the OpenAPI document, so each route's method and path are written once.
    /// `maxBodyBytes` makes it a streaming route.
    func route(
        _ router: inout Router, _ method: String, _ pattern: String, access: Access, maxBodyBytes: Int? = nil,
        _ operation: APIOperation, _ body: @escaping @Sendable (HTTPRequest) async throws -> HTTPResponse
    ) {
        document.add(method, pattern, access: access, operation)
        let handler = endpoint(method, pattern, access: access, body)
        if let maxBodyBytes {
            router.addStreaming(method, pattern, maxBodyBytes: maxBodyBytes, handler)
        } else {
            router.add(method, pattern, handler)
        }
    }

    /// Wraps a handler with auth, error mapping and metrics.
    public func endpoint(_ method: String, _ route: String, access: Access, _ body: @escaping @Sendable (HTTPRequest) async throws -> HTTPResponse)
        -> HTTPHandler
    {
        { [self] request in
            let start = ContinuousClock.now
            var response: HTTPResponse
            do {
                switch access {
                case .open: break
                case .inference: if let e = tokens.check(request, scope: .inference) { throw e }
                case .admin: if let e = tokens.check(request, scope: .admin) { throw e }
                }
                response = try await body(request)
            } catch {
                if let mapped = APIError(mapping: error) {
                    response = mapped.response
                } else {
                    logger.error("handler failed", metadata: ["request_id": "\(request.requestID)", "error": "\(error)"])
                    response = APIError(500, .internal, "internal error (request \(request.requestID))").response
                }
            }
            response.headers.set("X-Request-Id", request.requestID)
            metrics.request(route: route, method: method, status: response.status, seconds: (ContinuousClock.now - start).seconds)
            return response
        }
    }

    public func register(on router: inout Router) {
        route(&router, "GET", "/healthz", access: .open, .json("Liveness", Health.self, description: "The process runs")) { _ in
            .json(200, Health())
        }
        var readyz = APIOperation.json(
            "Readiness: 200 once the startup warm-up is done and at least one model serves its default version; models whose default version failed are listed under problems",
            Readiness.self, description: "Ready")
        readyz.otherResponses[503] = ("Not ready", JSONSchema.of(Readiness.self))
        route(&router, "GET", "/readyz", access: .open, readyz) { [self] _ in readiness() }
        route(
            &router, "GET", "/metrics", access: .open,
            APIOperation(summary: "Prometheus metrics", content: .text("text/plain"), description: "Text exposition format")
        ) { [self] _ in
            var r = HTTPResponse(status: 200, body: metrics.exposition())
            r.headers.set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            return r
        }
        route(
            &router, "GET", "/openapi.json", access: .open,
            APIOperation(summary: "This document", content: .json(["type": "object"]), description: "OpenAPI 3.1")
        ) { [self] _ in
            .json(200, document.json)
        }
        route(&router, "GET", "/v1/models", access: .inference, .json("List models", ModelList.self)) { [self] _ in
            .json(200, ModelList(models: store.snapshot.keys.sorted().compactMap { modelSummary($0) }))
        }
        route(&router, "GET", "/v1/models/{name}", access: .inference, .json("Describe a model", ModelDetail.self)) { [self] req in
            let name = req.pathParameters["name"] ?? ""
            guard let detail = modelDetail(name) else { throw ModelStore.StoreError.unknownModel(name) }
            return .json(200, detail)
        }
        route(&router, "GET", "/v1/models/{name}/versions", access: .inference, .json("List a model's versions", VersionList.self)) {
            [self] req in
            let name = req.pathParameters["name"] ?? ""
            guard store.entry(name) != nil else { throw ModelStore.StoreError.unknownModel(name) }
            return .json(200, VersionList(model: name, versions: versionList(name)))
        }
        route(
            &router, "PUT", "/v1/models/{name}/default", access: .admin,
            .json(
                "Set the default version (pin or roll back)", ModelDetail.self, description: "Updated model",
                body: .json(JSONSchema.of(SetDefaultRequest.self)), errors: [409])
        ) { [self] req in
            try await setDefault(req)
        }
        let classifyQuery = ClassifyParameters.queryParameters
        let classifyErrors = [413, 415, 429, 503, 504]
        let classifyHandler: @Sendable (HTTPRequest) async throws -> HTTPResponse = { [self] req in try await classify(req) }
        route(
            &router, "POST", "/v1/models/{name}/classify", access: .inference,
            .json(
                "Classify images with the default version", ClassifyResponse.self, description: "Predictions", body: .images,
                query: classifyQuery, headers: ["X-Model-Version"], errors: classifyErrors), classifyHandler)
        route(
            &router, "POST", "/v1/models/{name}/versions/{version}/classify", access: .inference,
            .json(
                "Classify images with a given version", ClassifyResponse.self, description: "Predictions", body: .images,
                query: classifyQuery, headers: ["X-Model-Version"], errors: classifyErrors), classifyHandler)
    }

    // MARK: readiness and model descriptions

    /// One warm-up inference on `version` (zeros at its default T), so the first real request does
    /// not pay for first-use allocations; marks the version warmed.
    func warm(_ version: ModelStore.Version) async throws {
        let spec = version.model.description.inputSpec
        let job = InferenceScheduler.Job(input: [Float](repeating: 0, count: spec.count), seed: 0, trace: false, deadline: nil)
        _ = try await scheduler.submit(job, version: version, timesteps: version.snn.defaultTimesteps)
        store.markWarmed(version.name, version: version.number)
    }

    /// The state of a model's default version: ready, loading (startup warm-up not done yet),
    /// failed, or no_default_version.
    func state(_ entry: ModelStore.Entry) -> String {
        switch entry.defaultVersion.flatMap({ entry.versions[$0] }) {
        case .ready: entry.warmed || store.startupWarmUpFinished ? "ready" : "loading"
        case .failed: "failed"
        case nil: "no_default_version"
        }
    }

    /// Readiness (documented in README): 200 once the startup warm-up is done and at least one
    /// model serves its default version. A model whose default version failed to load is reported
    /// (`problems` names the version and the reason) but does not make the server unready while
    /// others serve: a replica with one broken model still serves the rest. Pinning a good version
    /// (`PUT …/default`) makes that model ready again.
    func readiness() -> HTTPResponse {
        var states: [String: String] = [:]
        var problems: [String: String] = [:]
        for (name, entry) in store.snapshot {
            states[name] = state(entry)
            if let reason = entry.defaultFailure, let v = entry.defaultVersion {
                problems[name] = "default version \(v) failed to load: \(reason)"
            } else if states[name] == "no_default_version" {
                problems[name] = "no version loaded"
            } else if let unserved = entry.unservedDefault {
                problems[name] = unserved
            }
        }
        let ready = states.values.contains("ready") && !states.values.contains("loading")
        let body = Readiness(status: ready ? "ready" : "not_ready", models: states, problems: problems.isEmpty ? nil : problems)
        return .json(ready ? 200 : 503, body)
    }

    func modelSummary(_ name: String) -> ModelSummary? {
        guard let entry = store.entry(name) else { return nil }
        let version = try? store.resolve(name)
        return ModelSummary(
            name: name, defaultVersion: entry.defaultVersion, versions: entry.versions.keys.sorted(),
            architecture: version?.model.description.architecture, defaultTimesteps: version?.snn.defaultTimesteps,
            ready: version != nil && state(entry) == "ready")
    }

    func modelDetail(_ name: String) -> ModelDetail? {
        guard let entry = store.entry(name) else { return nil }
        var detail = ModelDetail(name: name, defaultVersion: entry.defaultVersion, versions: versionList(name), ready: false)
        guard let version = try? store.resolve(name) else { return detail }
        let d = version.model.description
        let snn = version.snn
        detail.architecture = d.architecture
        detail.input = d.input
        detail.labels = d.labels
        detail.defaultTimesteps = snn.defaultTimesteps
        detail.maxTimesteps = snn.maxTimesteps
        detail.encoding = snn.encoding
        detail.leak = Double(snn.leak)
        detail.thresholds = snn.thresholds.map(Double.init)
        detail.initialMembrane = snn.initialMembrane.map(Double.init)
        detail.exitPolicy = snn.exitPolicy
        detail.accuracies = d.provenance.accuracies
        detail.ready = state(entry) == "ready"
        return detail
    }

    func versionList(_ name: String) -> [VersionInfo] {
        guard let entry = store.entry(name) else { return [] }
        return entry.versions.sorted { $0.key < $1.key }.map { n, state in
            var info = VersionInfo(version: n, default: n == entry.defaultVersion, state: .ready)
            switch state {
            case .ready(let v):
                let provenance = v.model.description.provenance
                info.createdAt = provenance.createdAt
                info.baseModel = provenance.baseModel
                info.accuracies = provenance.accuracies
            case .failed(let reason):
                info.state = .failed
                info.error = reason
            }
            return info
        }
    }

    func setDefault(_ req: HTTPRequest) async throws -> HTTPResponse {
        let name = req.pathParameters["name"] ?? ""
        let body: SetDefaultRequest
        do { body = try JSONBody.decode(SetDefaultRequest.self, from: req.body) } catch {
            // A missing version is an invalid parameter, as the API has always said.
            if case .badRequest(let message) = error { throw RequestError.invalidParameter(message) }
            throw error
        }
        let v = body.version
        guard v >= 1 else { throw RequestError.invalidParameter("'version' must be an integer ≥ 1") }
        do {
            try store.setDefault(name, version: v)
        } catch {
            switch error {
            case .unknownVersion, .brokenVersion: throw RequestError.conflict(error.description)
            case .unknownModel, .io: throw error
            }
        }
        // Warm the new default before answering, so the model is ready when the PUT returns (a
        // failed warm-up only costs the first request its allocations: the version is loaded).
        if let version = try? store.resolve(name, version: v) { try? await warm(version) }
        publishVersionMetrics(name)
        logger.info("default version changed", metadata: ["model": "\(name)", "version": "\(v)"])
        guard let detail = modelDetail(name) else { throw ModelStore.StoreError.unknownModel(name) }
        return .json(200, detail)
    }

    public func publishVersionMetrics(_ name: String) {
        guard let entry = store.entry(name) else { return }
        for (n, state) in entry.versions {
            if case .ready = state { metrics.versionLoaded(model: name, version: n, loaded: true, isDefault: n == entry.defaultVersion) }
        }
    }

    // MARK: classification

    func classify(_ req: HTTPRequest) async throws -> HTTPResponse {
        let started = ContinuousClock.now
        let name = req.pathParameters["name"] ?? ""
        var versionNumber: Int? = nil
        if let v = req.pathParameters["version"] {
            guard let n = Int(v), n > 0 else { throw RequestError.notFound("version '\(v)' is not a positive integer") }
            versionNumber = n
        }
        let version = try store.resolve(name, version: versionNumber)
        if versionNumber == nil, let entry = store.entry(name), state(entry) == "loading" { throw ClassifyError.notReady(name) }
        let request = try ClassifyRequest.parse(req)
        let params = request.parameters
        let d = version.model.description
        let snn = version.snn
        let t = params.timesteps ?? snn.defaultTimesteps
        guard t <= snn.maxTimesteps else {
            throw RequestError.invalidParameter("parameter 'timesteps' is \(t), above this model's maximum of \(snn.maxTimesteps)")
        }
        let policy = try exitPolicy(params, snn: snn)
        let topK = min(params.topK ?? 5, d.labels.count)
        guard request.images.count <= configuration.maxImagesPerRequest else {
            throw ClassifyError.tooManyImages(count: request.images.count, limit: configuration.maxImagesPerRequest)
        }
        let deadline = params.deadlineMs.map { started + .milliseconds($0) }
        // Decode every image first: a bad one fails the request before any compute is queued.
        let spec = d.inputSpec
        var inputs: [[Float]] = []
        var decodeSeconds: [Double] = []
        let maxPixels = configuration.maxImagePixels
        for (i, bytes) in request.images.enumerated() {
            let t0 = ContinuousClock.now
            let which = request.images.count > 1 ? "image \(i + 1): " : ""
            let pixels = ImageHeader.pixelCount(bytes)
            if let pixels, pixels > maxPixels {
                throw ClassifyError.invalidImage("\(which)the image declares \(pixels) pixels, above the limit of \(maxPixels)")
            }
            let decoded = try await decoder.run(pixels: pixels) {
                Result { () throws(ImageDecodingError) -> [Float] in
                    let image = try ImageDecoder.decode(bytes, grayscale: spec.channels == 1, maxPixels: maxPixels).prepared(for: spec)
                    var floats = [Float](repeating: 0, count: spec.count)
                    floats.withUnsafeMutableBufferPointer { image.normalized(spec, into: $0.baseAddress!) }
                    return floats
                }
            }
            switch decoded {
            case .success(let floats): inputs.append(floats)
            case .failure(let error): throw ClassifyError.invalidImage("\(which)\(error.message)")
            }
            decodeSeconds.append((ContinuousClock.now - t0).seconds)
        }
        let baseSeed = params.seed ?? UInt64.random(in: 0...UInt64(UInt32.max))
        let outcomes: [InferenceScheduler.Outcome]
        do {
            outcomes = try await withThrowingTaskGroup(of: (Int, InferenceScheduler.Outcome).self) { group in
                for (i, input) in inputs.enumerated() {
                    let job = InferenceScheduler.Job(input: input, seed: baseSeed &+ UInt64(i), trace: request.trace, deadline: deadline)
                    group.addTask { (i, try await self.scheduler.submit(job, version: version, timesteps: t, exit: policy)) }
                }
                var results = [InferenceScheduler.Outcome?](repeating: nil, count: inputs.count)
                for try await (i, o) in group { results[i] = o }
                return results.map { $0! }
            }
        } catch InferenceScheduler.Failure.deadlineExceeded {
            throw ClassifyError.deadlineExceeded(milliseconds: params.deadlineMs ?? 0)
        }
        let results = outcomes.enumerated().map { i, o in
            metrics.queueWait(seconds: o.queueSeconds)
            metrics.timestepsUsed(model: name, steps: o.timestepsUsed, exit: o.exit.rawValue)
            return result(o, labels: d.labels, timesteps: t, topK: topK, decodeSeconds: decodeSeconds[i])
        }
        let body = ClassifyResponse(
            model: name, modelVersion: version.number, requestID: req.requestID, timesteps: t, seed: String(baseSeed),
            results: results, timingsMs: .init(total: (ContinuousClock.now - started).seconds * 1e3))
        var response = HTTPResponse.json(200, body)
        response.headers.set("X-Model-Version", String(version.number))
        return response
    }

    /// The adaptive policy a request asks for: the model's calibrated one, with `exit_threshold`
    /// overriding its threshold; nil for a fixed budget.
    func exitPolicy(_ params: ClassifyParameters, snn: SNNConfig) throws(RequestError) -> ExitPolicy? {
        guard params.adaptive ?? (params.exitThreshold != nil) else { return nil }
        if var policy = snn.exitPolicy {
            policy.threshold = params.exitThreshold ?? policy.threshold
            return policy
        }
        // Uncalibrated: a threshold given with the request, on the margin rule from step 1.
        guard let threshold = params.exitThreshold else {
            throw .invalidParameter("adaptive: this model has no calibrated exit policy (spikeserve calibrate-exit); give exit_threshold")
        }
        return ExitPolicy(rule: .margin, threshold: threshold)
    }

    /// One image's answer: top-k labels (none when the potentials decided nothing, e.g. too few
    /// time steps), spike counts and rates, timings, and the per-step trace when asked for.
    func result(_ o: InferenceScheduler.Outcome, labels: [String], timesteps budget: Int, topK: Int, decodeSeconds: Double) -> ClassifyResult {
        let t = o.timestepsUsed
        let order = o.decided ? Array(o.scores.indices.sorted { o.scores[$0] > o.scores[$1] }.prefix(topK)) : []
        let trace = o.trace.map { steps in
            steps.enumerated().map { step, potentials in
                let scores = softmax(potentials.map { $0 / Float(step + 1) }).map(Double.init)
                // As for the result: no label while the top potential is shared.
                let top = potentials.max() ?? 0
                let leaders = potentials.indices.filter { potentials[$0] == top }
                guard leaders.count == 1, let best = leaders.first else {
                    return ClassifyResult.TraceStep(step: step + 1, decided: false, scores: scores)
                }
                return ClassifyResult.TraceStep(step: step + 1, decided: true, index: best, label: labels[best], scores: scores)
            }
        }
        return ClassifyResult(
            decided: o.decided,
            predictions: order.map { .init(label: labels[$0], index: $0, score: Double(o.scores[$0])) },
            timestepsUsed: t, exit: o.exit, spikeCount: o.spikes, synapticOps: o.synapticOps,
            spikeRates: zip(o.layerSpikes, o.layerNeurons).map { Double($0) / Double(max(1, $1 * t)) },
            timingsMs: .init(
                decode: decodeSeconds * 1e3, queue: o.queueSeconds * 1e3, compute: o.computeSeconds * 1e3, batchSize: o.batchSize),
            trace: trace)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
