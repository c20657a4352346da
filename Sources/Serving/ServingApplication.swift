import Foundation
import HTTPServer
import Logging
import SNN

/// Wires the store, the scheduler, the API and the HTTP server together, and runs until SIGTERM or
/// SIGINT: the server starts answering at once (health, readiness 503), loads and warms the models,
/// then reports ready.
public final class ServingApplication: Sendable {
    /// What this process does when several share one models directory (`serve --role`).
    public enum Role: String, Sendable, CaseIterable {
        /// Serves classification and reads the store; job endpoints answer 421 naming the worker.
        case inference
        /// Runs fine-tuning and conversion jobs and publishes versions (and serves too).
        case worker
        /// Both: one machine.
        case all
    }

    public let store: ModelStore
    public let scheduler: InferenceScheduler
    public let api: ServingAPI
    public let server: Server
    /// Nil on an inference replica.
    public let jobs: JobManager?
    public let role: Role
    /// Adopts versions and defaults that other processes write into the models directory.
    public let watcher: StoreWatcher?
    let logger: Logger

    /// `jobs`: job settings; its state directory defaults to `MODELS/.spikeserve`. `watch`: how
    /// the store notices other processes' writes (nil: it does not).
    public init(
        modelsDirectory: String, publicDirectory: String?, tokens: AccessTokens,
        batching: InferenceScheduler.Configuration = .init(), decoding: DecodePool.Configuration = .init(),
        jobs jobConfiguration: JobManager.Configuration? = nil, role: Role = .all, workerURL: String? = nil,
        watch: StoreWatcher.Configuration? = nil,
        server configuration: Server.Configuration, logger: Logger
    ) throws {
        self.role = role
        self.logger = logger
        let metrics = ServingMetrics()
        store = ModelStore(root: modelsDirectory)
        scheduler = InferenceScheduler(
            configuration: batching,
            observer: { report in
                metrics.batch(
                    model: report.model, version: report.version, size: report.size, timesteps: report.timesteps,
                    spikes: report.spikes, computeSeconds: report.computeSeconds)
            }, dropObserver: { model, reason in metrics.dropped(model: model, reason: reason.rawValue) })
        let api = ServingAPI(
            store: store, scheduler: scheduler, decoder: DecodePool(configuration: decoding), tokens: tokens,
            metrics: metrics, logger: logger)
        self.api = api
        // Leftovers of interrupted writes: all of them on one machine; on a shared volume the
        // worker sweeps only old ones (a replica may be replacing serving.json), replicas none.
        try store.loadAll(sweepStagingOlderThan: [.all: 0, .worker: 600][role])
        jobs =
            role == .inference
            ? nil
            : try JobManager(
                configuration: jobConfiguration ?? .init(stateDirectory: modelsDirectory + "/.spikeserve", dataRoot: nil),
                store: store, scheduler: scheduler, logger: logger, onVersionChange: { name in api.publishVersionMetrics(name) })
        let store = self.store
        watcher = watch.map { configuration in
            StoreWatcher(store: store, configuration: configuration, logger: logger) { name, number in
                await Self.adopt(name, number, store: store, api: api, logger: logger)
            }
        }
        var router = Router()
        api.register(on: &router)
        api.registerJobs(jobs, workerURL: workerURL, on: &router)
        if let publicDirectory, FileManager.default.fileExists(atPath: publicDirectory) {
            router.fallback(StaticFiles(root: publicDirectory).handler())
        }
        let routes = router
        server = Server(configuration: configuration, logger: logger, streamingBody: { routes.streamingLimit(method: $0, path: $1) }) { request in
            await routes.handle(request)
        }
    }

    /// Starts listening, loads and warms every model's default version, and returns once the
    /// server has shut down after a signal.
    public func run() async throws {
        try start()
        server.installSignalHandlers()
        await server.waitUntilStopped()
        watcher?.stop()
        jobs?.stop()
        scheduler.stop()
        api.decoder.stop()
        logger.info("stopped")
    }

    public func start() throws {
        try server.start()
        logger.info("listening", metadata: ["port": "\(server.boundPort)", "models": "\(store.root)"])
        Task { await warmUp() }
    }

    /// One inference per default version, so the first real request does not pay for first-use
    /// allocations; readiness turns 200 once every model has warmed.
    public func warmUp() async {
        for (name, entry) in store.snapshot.sorted(by: { $0.key < $1.key }) {
            for (n, state) in entry.versions {
                if case .failed(let reason) = state {
                    logger.error("version failed to load", metadata: ["model": "\(name)", "version": "\(n)", "error": "\(reason)"])
                }
            }
            guard let version = try? store.resolve(name) else { continue }
            do {
                try await api.warm(version)
                api.publishVersionMetrics(name)
                logger.info("model ready", metadata: ["model": "\(name)", "version": "\(version.number)"])
            } catch {
                logger.error("warm-up failed", metadata: ["model": "\(name)", "error": "\(error)"])
            }
        }
        store.startupWarmUpFinished = true
        watcher?.start()
    }

    /// Makes `number` — which `serving.json` on the shared volume now names — this process's
    /// default, with the guarantees of a local deployment: it loaded, a warm-up inference through
    /// the scheduler runs and gives finite output potentials, and only then does the default flip;
    /// requests in flight finish on the version they started on. A version that fails any of this
    /// is never served here: the previous default keeps serving and readiness names the problem.
    static func adopt(_ name: String, _ number: Int, store: ModelStore, api: ServingAPI, logger: Logger) async {
        let refuse = { (reason: String) in
            store.refuseVersion(name, version: number)
            let text = "serving.json names version \(number), which cannot serve here (\(reason)); the previous default keeps serving"
            if store.recordUnservedDefault(name, reason: text) {
                logger.error("version not adopted", metadata: ["model": "\(name)", "version": "\(number)", "reason": "\(reason)"])
            }
        }
        switch store.entry(name)?.versions[number] {
        case .ready(let version)?:
            let spec = version.model.description.inputSpec
            let probe = InferenceScheduler.Job(input: [Float](repeating: 0.5, count: spec.count), seed: 0, trace: false, deadline: nil)
            do {
                let outcome = try await api.scheduler.submit(probe, version: version, timesteps: version.snn.defaultTimesteps)
                guard outcome.potentials.allSatisfy(\.isFinite) else { return refuse("its warm-up gave non-finite output potentials") }
            } catch InferenceScheduler.Failure.queueFull(_) {
                return  // busy, not broken: the next scan tries again
            } catch {
                return refuse("warm-up failed: \(error)")
            }
            store.markWarmed(name, version: number)
            guard store.adoptDefault(name, version: number) else { return }
            api.publishVersionMetrics(name)
            logger.info("adopted a new default version", metadata: ["model": "\(name)", "version": "\(number)"])
        case .failed(let reason)?:
            refuse("it failed to load: \(reason)")
        case nil:
            refuse("it is not on disk")
        }
    }
}

/// One JSON object per log line (`--log-format json`).
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var object: [String: String] = [
            "ts": ISO8601DateFormatter().string(from: Date()), "level": event.level.rawValue, "label": label, "message": "\(event.message)",
        ]
        for (k, v) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) { object[k] = "\(v)" }
        if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
            FileHandle.standardError.write(data + Data("\n".utf8))
        }
    }
}
