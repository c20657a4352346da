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

    /// Registers `body` for `method` and `pattern` behind `endpoint` (auth, error mapping, metrics),
    /// so each route's method and path are written once. `maxBodyBytes` makes it a streaming route.
    func route(
        _ router: inout Router, _ method: String, _ pattern: String, access: Access, maxBodyBytes: Int? = nil,
        _ body: @escaping @Sendable (HTTPRequest) async throws -> HTTPResponse
    ) {
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
            } catch let error as APIError {
                response = error.response
            } catch {
                logger.error("handler failed", metadata: ["request_id": "\(request.requestID)", "error": "\(error)"])
                response = APIError(500, "internal", "internal error (request \(request.requestID))").response
            }
            response.headers.set("X-Request-Id", request.requestID)
            metrics.request(route: route, method: method, status: response.status, seconds: (ContinuousClock.now - start).seconds)
            return response
        }
    }

    public func register(on router: inout Router) {
        route(&router, "GET", "/healthz", access: .open) { _ in .json(200, ["status": "ok"] as JSONValue) }
        route(&router, "GET", "/readyz", access: .open) { [self] _ in readiness() }
        route(&router, "GET", "/metrics", access: .open) { [self] _ in
            var r = HTTPResponse(status: 200, body: metrics.exposition())
            r.headers.set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            return r
        }
        route(&router, "GET", "/openapi.json", access: .open) { _ in
            var r = HTTPResponse(status: 200, body: Array(OpenAPIDocument.json.utf8))
            r.headers.set("Content-Type", "application/json")
            return r
        }
        route(&router, "GET", "/v1/models", access: .inference) { [self] _ in
            .json(200, ["models": .array(store.snapshot.keys.sorted().compactMap { modelSummary($0) })] as JSONValue)
        }
        route(&router, "GET", "/v1/models/{name}", access: .inference) { [self] req in
            guard let detail = modelDetail(req.pathParameters["name"] ?? "") else {
                throw APIError.notFound("model '\(req.pathParameters["name"] ?? "")' does not exist")
            }
            return .json(200, detail)
        }
        route(&router, "GET", "/v1/models/{name}/versions", access: .inference) { [self] req in
            let name = req.pathParameters["name"] ?? ""
            guard store.entry(name) != nil else { throw APIError.notFound("model '\(name)' does not exist") }
            return .json(200, ["model": .string(name), "versions": versionList(name)] as JSONValue)
        }
        route(&router, "PUT", "/v1/models/{name}/default", access: .admin) { [self] req in
            try await setDefault(req)
        }
        let classifyHandler: @Sendable (HTTPRequest) async throws -> HTTPResponse = { [self] req in try await classify(req) }
        route(&router, "POST", "/v1/models/{name}/classify", access: .inference, classifyHandler)
        route(&router, "POST", "/v1/models/{name}/versions/{version}/classify", access: .inference, classifyHandler)
    }

    // MARK: readiness and model descriptions

    /// One warm-up inference on `version` (zeros at its default T), so the first real request does
    /// not pay for first-use allocations; marks the version warmed.
    func warm(_ version: ModelStore.Version) async throws {
        let spec = version.model.description.inputSpec
        let job = InferenceScheduler.Job(input: [Float](repeating: 0, count: spec.count), seed: 0, trace: false, deadline: nil)
        _ = try await scheduler.submit(job, version: version, timesteps: version.model.description.snn!.defaultTimesteps)
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
        var states: [(String, JSONValue)] = []
        var problems: [(String, JSONValue)] = []
        var anyReady = false, anyLoading = false
        for (name, entry) in store.snapshot.sorted(by: { $0.key < $1.key }) {
            let s = state(entry)
            anyReady = anyReady || s == "ready"
            anyLoading = anyLoading || s == "loading"
            states.append((name, .string(s)))
            if let reason = entry.defaultFailure, let v = entry.defaultVersion {
                problems.append((name, .string("default version \(v) failed to load: \(reason)")))
            } else if s == "no_default_version" {
                problems.append((name, .string("no version loaded")))
            }
        }
        let ready = anyReady && !anyLoading
        var body: [(String, JSONValue)] = [("status", .string(ready ? "ready" : "not_ready")), ("models", .object(states))]
        if !problems.isEmpty { body.append(("problems", .object(problems))) }
        return .json(ready ? 200 : 503, JSONValue.object(body))
    }

    func modelSummary(_ name: String) -> JSONValue? {
        guard let entry = store.entry(name) else { return nil }
        let version = try? store.resolve(name)
        return [
            "name": .string(name),
            "default_version": .optional(entry.defaultVersion),
            "versions": .array(entry.versions.keys.sorted().map { .int($0) }),
            "architecture": .optional(version?.model.description.architecture),
            "default_timesteps": .optional(version?.model.description.snn?.defaultTimesteps),
            "ready": .bool(version != nil && state(entry) == "ready"),
        ]
    }

    func modelDetail(_ name: String) -> JSONValue? {
        guard let entry = store.entry(name) else { return nil }
        guard let version = try? store.resolve(name) else {
            return ["name": .string(name), "default_version": .optional(entry.defaultVersion), "versions": versionList(name), "ready": false]
        }
        let d = version.model.description
        let snn = d.snn!
        return [
            "name": .string(name),
            "architecture": .string(d.architecture),
            "input": [
                "channels": .int(d.input.channels), "height": .int(d.input.height), "width": .int(d.input.width),
                "mean": .numbers(d.input.mean), "std": .numbers(d.input.std),
            ],
            "labels": .array(d.labels.map { .string($0) }),
            "default_timesteps": .int(snn.defaultTimesteps),
            "max_timesteps": .int(snn.maxTimesteps),
            "encoding": .string(snn.encoding.rawValue),
            "leak": .double(Double(snn.leak)),
            "thresholds": .numbers(snn.thresholds),
            "default_version": .optional(entry.defaultVersion),
            "versions": versionList(name),
            "accuracies": .object(d.provenance.accuracies.sorted { $0.key < $1.key }.map { ($0.key, .double($0.value)) }),
            "ready": .bool(state(entry) == "ready"),
        ]
    }

    func versionList(_ name: String) -> JSONValue {
        guard let entry = store.entry(name) else { return [] }
        return .array(
            entry.versions.keys.sorted().map { n in
                var fields: [(String, JSONValue)] = [("version", .int(n)), ("default", .bool(n == entry.defaultVersion))]
                switch entry.versions[n]! {
                case .ready(let v):
                    fields.append(("state", "ready"))
                    fields.append(("created_at", .optional(v.model.description.provenance.createdAt)))
                    fields.append(("base_model", .optional(v.model.description.provenance.baseModel)))
                    fields.append(
                        (
                            "accuracies",
                            .object(
                                v.model.description.provenance.accuracies.sorted { $0.key < $1.key }
                                    .map { ($0.key, .double($0.value)) })
                        ))
                case .failed(let reason):
                    fields.append(("state", "failed"))
                    fields.append(("error", .string(reason)))
                }
                return .object(fields)
            })
    }

    func setDefault(_ req: HTTPRequest) async throws -> HTTPResponse {
        let name = req.pathParameters["name"] ?? ""
        let object = try JSONValue.parseObject(req.body)
        guard let v = JSONField.int(object["version"]), v >= 1 else {
            throw APIError.badRequest("body needs {\"version\": N}", code: "invalid_parameter")
        }
        do {
            try store.setDefault(name, version: v)
        } catch {
            switch error {
            case .unknownModel: throw APIError.notFound(error.description)
            case .unknownVersion, .brokenVersion: throw APIError.conflict(error.description)
            case .io: throw APIError(500, "internal", error.description)
            }
        }
        // Warm the new default before answering, so the model is ready when the PUT returns (a
        // failed warm-up only costs the first request its allocations: the version is loaded).
        if let version = try? store.resolve(name, version: v) { try? await warm(version) }
        publishVersionMetrics(name)
        logger.info("default version changed", metadata: ["model": "\(name)", "version": "\(v)"])
        return .json(200, modelDetail(name)!)
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
            guard let n = Int(v), n > 0 else { throw APIError.notFound("version '\(v)' is not a positive integer") }
            versionNumber = n
        }
        let version: ModelStore.Version
        do { version = try store.resolve(name, version: versionNumber) } catch {
            switch error {
            case .unknownModel, .unknownVersion: throw APIError.notFound(error.description)
            case .brokenVersion: throw APIError(503, "version_unavailable", error.description)
            case .io: throw APIError(500, "internal", error.description)
            }
        }
        if versionNumber == nil, let entry = store.entry(name), state(entry) == "loading" {
            throw APIError(503, "not_ready", "model '\(name)' is still loading", headers: [("Retry-After", "1")])
        }
        let params = try ClassifyRequest.parse(req)
        let d = version.model.description
        let snn = d.snn!
        let t = params.timesteps ?? snn.defaultTimesteps
        guard t <= snn.maxTimesteps else {
            throw APIError.badRequest("parameter 'timesteps' is \(t), above this model's maximum of \(snn.maxTimesteps)", code: "invalid_parameter")
        }
        let topK = min(params.topK ?? 5, d.labels.count)
        guard params.images.count <= configuration.maxImagesPerRequest else {
            throw APIError(413, "too_many_images", "\(params.images.count) images in one request; the limit is \(configuration.maxImagesPerRequest)")
        }
        let deadline = params.deadlineMs.map { started + .milliseconds($0) }
        // Decode every image first: a bad one fails the request before any compute is queued.
        let spec = d.inputSpec
        var inputs: [[Float]] = []
        var decodeSeconds: [Double] = []
        let maxPixels = configuration.maxImagePixels
        for (i, bytes) in params.images.enumerated() {
            let t0 = ContinuousClock.now
            let decoded: Result<[Float], ImageDecodingError>
            let pixels = ImageHeader.pixelCount(bytes)
            if let pixels, pixels > maxPixels {
                let which = params.images.count > 1 ? "image \(i + 1): " : ""
                throw APIError.badRequest(
                    "\(which)the image declares \(pixels) pixels, above the limit of \(maxPixels)", code: "invalid_image")
            }
            do {
                decoded = try await decoder.run(pixels: pixels) {
                    Result { () throws(ImageDecodingError) -> [Float] in
                        let image = try ImageDecoder.decode(bytes, grayscale: spec.channels == 1, maxPixels: maxPixels).prepared(for: spec)
                        var floats = [Float](repeating: 0, count: spec.count)
                        floats.withUnsafeMutableBufferPointer { image.normalized(spec, into: $0.baseAddress!) }
                        return floats
                    }
                }
            } catch let DecodePool.Failure.busy(pixels, limit) {
                throw APIError(
                    503, "decode_busy", "decoding \(pixels) more pixels would exceed \(limit) in flight; retry shortly",
                    headers: [("Retry-After", "1")])
            } catch DecodePool.Failure.stopped {
                throw APIError(503, "shutting_down", "the server is shutting down")
            }
            switch decoded {
            case .success(let floats): inputs.append(floats)
            case .failure(let error):
                let which = params.images.count > 1 ? "image \(i + 1): " : ""
                throw APIError.badRequest("\(which)\(error.message)", code: "invalid_image")
            }
            decodeSeconds.append((ContinuousClock.now - t0).seconds)
        }
        let baseSeed = params.seed ?? UInt64.random(in: 0...UInt64(UInt32.max))
        let outcomes: [InferenceScheduler.Outcome]
        do {
            outcomes = try await withThrowingTaskGroup(of: (Int, InferenceScheduler.Outcome).self) { group in
                for (i, input) in inputs.enumerated() {
                    let job = InferenceScheduler.Job(input: input, seed: baseSeed &+ UInt64(i), trace: params.trace, deadline: deadline)
                    group.addTask { (i, try await self.scheduler.submit(job, version: version, timesteps: t)) }
                }
                var results = [InferenceScheduler.Outcome?](repeating: nil, count: inputs.count)
                for try await (i, o) in group { results[i] = o }
                return results.map { $0! }
            }
        } catch let failure as InferenceScheduler.Failure {
            switch failure {
            case .queueFull(let limit):
                throw APIError(429, "queue_full", "the inference queue is full (\(limit) images); retry shortly", headers: [("Retry-After", "1")])
            case .deadlineExceeded:
                throw APIError(504, "deadline_exceeded", "the request did not finish within deadline_ms=\(params.deadlineMs ?? 0)")
            case .shuttingDown:
                throw APIError(503, "shutting_down", "the server is shutting down")
            case .cancelled:
                throw APIError(503, "cancelled", "the request was cancelled before its images were computed")
            }
        }
        var results: [JSONValue] = []
        for (i, o) in outcomes.enumerated() {
            metrics.queueWait(seconds: o.queueSeconds)
            // No top-k claim when the potentials decided nothing (e.g. too few time steps).
            let order = o.decided ? Array(o.scores.indices.sorted { o.scores[$0] > o.scores[$1] }.prefix(topK)) : []
            var fields: [(String, JSONValue)] = [
                ("decided", .bool(o.decided)),
                ("predictions", .array(order.map { ["label": .string(d.labels[$0]), "index": .int($0), "score": .double(Double(o.scores[$0]))] })),
                ("timesteps_used", .int(t)),
                ("spike_count", .int(o.spikes)),
                ("synaptic_ops", .int(o.synapticOps)),
                ("spike_rates", .array(zip(o.layerSpikes, o.layerNeurons).map { .double(Double($0) / Double(max(1, $1 * t))) })),
                (
                    "timings_ms",
                    [
                        "decode": .double(decodeSeconds[i] * 1e3), "queue": .double(o.queueSeconds * 1e3),
                        "compute": .double(o.computeSeconds * 1e3), "batch_size": .int(o.batchSize),
                    ]
                ),
            ]
            if let trace = o.trace {
                fields.append(
                    (
                        "trace",
                        .array(
                            trace.enumerated().map { step, potentials in
                                let scores = softmax(potentials.map { $0 / Float(step + 1) })
                                // As for the result: no label while the top potential is shared.
                                let top = potentials.max() ?? 0
                                let leaders = potentials.indices.filter { potentials[$0] == top }
                                guard leaders.count == 1, let best = leaders.first else {
                                    return ["step": .int(step + 1), "decided": .bool(false), "scores": .numbers(scores)]
                                }
                                return [
                                    "step": .int(step + 1), "decided": .bool(true), "index": .int(best),
                                    "label": .string(d.labels[best]), "scores": .numbers(scores),
                                ]
                            })
                    ))
            }
            results.append(.object(fields))
        }
        var response = HTTPResponse.json(
            200,
            [
                "model": .string(name), "model_version": .int(version.number), "request_id": .string(req.requestID),
                "timesteps": .int(t), "seed": .string(String(baseSeed)), "results": .array(results),
                "timings_ms": ["total": .double((ContinuousClock.now - started).seconds * 1e3)],
            ] as JSONValue)
        response.headers.set("X-Model-Version", String(version.number))
        return response
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
