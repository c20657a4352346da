import Foundation
import Imaging
import Logging
import NativeBridge
import SNN
import Synchronization

/// Fine-tuning jobs over the API: validates requests into job records, and runs queued jobs —
/// each on a training thread that uses at most `coreShare` of the cores (`TrainingRun`), then
/// publishes the result as a new version and deploys it once loaded, warmed and validated
/// (`VersionPublisher`). State and persistence are `JobQueue`'s.
public final class JobManager: Sendable {
    public struct Configuration: Sendable {
        /// Where job records, events, checkpoints and uploaded datasets live.
        public var stateDirectory: String
        /// Training data paths in requests are relative to this directory; nil disables paths.
        public var dataRoot: String?
        /// Fraction of the cores training may use (at least one core). Default 0.5.
        public var coreShare = 0.5
        /// Versions kept on disk per model (the default version is always kept). Default 5.
        public var keepVersions = 5
        /// Jobs waiting behind the running ones. Default 16.
        public var maxQueuedJobs = 16
        /// Jobs trained at the same time, each on its own training thread with `coreShare` of the
        /// cores. Default 1: one at a time, the rest queue.
        public var maxConcurrentJobs = 1
        /// What an uploaded or referenced dataset archive may expand to.
        public var datasetLimits = DatasetLimits()
        public init(stateDirectory: String, dataRoot: String?) {
            self.stateDirectory = stateDirectory
            self.dataRoot = dataRoot
        }
    }

    public let configuration: Configuration
    let store: ModelStore
    let queue: JobQueue
    let data: TrainingData
    let publisher: VersionPublisher
    /// Names of models whose upload is being imported (not yet a queued conversion job).
    let creating = Mutex<Set<String>>([])

    public init(
        configuration: Configuration, store: ModelStore, scheduler: InferenceScheduler, logger: Logger,
        onVersionChange: @escaping @Sendable (String) -> Void = { _ in }
    ) throws {
        self.configuration = configuration
        self.store = store
        queue = JobQueue(
            jobStore: try JobStore(stateDirectory: configuration.stateDirectory), maxQueued: configuration.maxQueuedJobs, logger: logger)
        data = TrainingData(stateDirectory: configuration.stateDirectory, dataRoot: configuration.dataRoot, limits: configuration.datasetLimits)
        publisher = VersionPublisher(
            queue: queue, store: store, scheduler: scheduler, keepVersions: configuration.keepVersions, logger: logger,
            onVersionChange: onVersionChange)
        // Conversion jobs that ended while the server was down (or were cancelled while queued).
        for job in queue.list(status: nil, limit: Int.max, after: nil) where job.object == .conversion { cleanUpConversion(job.id) }
        let cores = max(1, Int((Double(Parallelism.machineCores) * configuration.coreShare).rounded(.down)))
        for i in 0..<max(1, configuration.maxConcurrentJobs) {
            let thread = TrainingThread(name: "spikeserve-training-\(i)", cores: cores)
            Task { [self] in await runner(on: thread) }
        }
    }

    public func stop() { queue.stop() }

    // MARK: queries

    public func job(_ id: String) -> JobRecord? { queue.job(id) }

    public func list(status: JobRecord.Status?, limit: Int, after: String?) -> [JobRecord] {
        queue.list(status: status, limit: limit, after: after)
    }

    public func events(_ id: String, after: Int, limit: Int) -> [JobEvent] { queue.events(id, after: after, limit: limit) }

    public func checkpoints(_ id: String) -> [CheckpointInfo] { queue.checkpoints(id) }

    // MARK: commands

    /// Validates a request and queues the job; nothing is queued when it throws.
    public func create(_ request: FineTuneJobRequest) throws(JobError) -> JobRecord {
        let job = try record(for: request)
        try queue.enqueue(job, description: "job created: fine-tune \(job.model) v\(job.baseVersion) on \(job.trainingData)")
        return job
    }

    public func cancel(_ id: String) throws(JobError) -> JobRecord {
        let job = try queue.cancel(id)
        cleanUpConversion(id)
        return job
    }

    /// Whether a model of this name is being imported or converted.
    func isCreating(_ name: String) -> Bool {
        creating.withLock { $0.contains(name) }
            || queue.list(status: nil, limit: Int.max, after: nil).contains { $0.object == .conversion && $0.model == name && !$0.status.isTerminal }
    }

    /// Claims `name` for an import; the queue is scanned under the same lock, so two requests
    /// for one name cannot both pass between a check and a claim.
    func reserve(_ name: String) -> Bool {
        creating.withLock { names in
            guard
                !queue.list(status: nil, limit: Int.max, after: nil).contains(where: {
                    $0.object == .conversion && $0.model == name && !$0.status.isTerminal
                })
            else { return false }
            return names.insert(name).inserted
        }
    }

    /// Removes what a conversion job leaves once it has ended: its imported ANN, and — when it
    /// failed or was cancelled before its model served — the half-created model, so the name is
    /// free again and no unvalidated version is served after a restart.
    func cleanUpConversion(_ id: String) {
        guard let job = queue.job(id), job.object == .conversion, job.status.isTerminal else { return }
        try? FileManager.default.removeItem(atPath: queue.jobStore.importedModelDirectory(id))
        if job.status != .succeeded, store.entry(job.model)?.defaultVersion == nil || store.entry(job.model)?.versions.isEmpty == true {
            store.removeModel(job.model)
        }
    }

    func release(_ name: String) { _ = creating.withLock { $0.remove(name) } }

    /// Continues a failed job that was marked resumable.
    public func resume(_ id: String) throws(JobError) -> JobRecord { try queue.resume(id) }

    /// The job a request describes, with every field checked and the data resolved, so a bad
    /// request fails before anything is queued.
    func record(for r: FineTuneJobRequest) throws(JobError) -> JobRecord {
        guard !r.model.isEmpty else { throw .invalid("\"model\" is required") }
        let base: ModelStore.Version
        do { base = try store.resolve(r.model) } catch { throw .invalidModel("\(error)") }
        guard !r.trainingData.isEmpty else { throw .invalid("\"training_data\" is required: a path under the data root or a dataset id") }
        typealias H = FineTuneJobRequest.Hyperparameters
        var hp = JobRecord.Hyperparameters()
        hp.timesteps = base.snn.defaultTimesteps
        if let h = r.hyperparameters {
            hp.timesteps = try Self.checked(h.timesteps, "hyperparameters.timesteps", 1...base.snn.maxTimesteps) ?? hp.timesteps
            hp.epochs = try Self.checked(h.epochs, "hyperparameters.epochs", H.epochRange) ?? hp.epochs
            hp.batchSize = try Self.checked(h.batchSize, "hyperparameters.batch_size", H.batchSizeRange) ?? hp.batchSize
            hp.limit = try Self.checked(h.limit, "hyperparameters.limit", H.limitRange)
            hp.learningRate = try Self.checked(h.learningRate, "hyperparameters.learning_rate", H.learningRateRange) ?? hp.learningRate
            hp.alpha = Float(try Self.checked(h.alpha, "hyperparameters.alpha", H.alphaRange) ?? Double(hp.alpha))
            hp.beta = Float(try Self.checked(h.beta, "hyperparameters.beta", H.betaRange) ?? Double(hp.beta))
            hp.surrogate = h.surrogate ?? hp.surrogate
        }
        let split = r.validationSplit ?? 0.1
        guard split > 0 && split < 1 else { throw .invalid("validation_split must be in (0, 1)") }
        if let m = r.minAccuracy, !(0...1).contains(m) { throw .invalid("min_accuracy must be a number in [0, 1]") }
        let folder: ImageFolder
        var validationClasses: [String]? = nil
        do {
            folder = try data.folder(r.trainingData)
            if let v = r.validationData { validationClasses = try data.folder(v).classes }
        } catch {
            throw .dataset(error)
        }
        if let validationClasses, validationClasses != folder.classes {
            throw .invalid("validation data classes differ from the training data's")
        }
        guard folder.classes == base.model.description.labels else {
            throw .invalid("training data classes \(folder.classes) do not match the model's labels \(base.model.description.labels)")
        }
        let id = "ftjob_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
        return JobRecord(
            id: String(id), model: r.model, baseVersion: base.number, status: .queued, createdAt: unixNow(),
            trainingData: r.trainingData, validationData: r.validationData, validationSplit: split, hyperparameters: hp,
            autoDeploy: r.autoDeploy ?? true, minAccuracy: r.minAccuracy, force: r.force ?? false, resumable: false, seed: r.seed ?? 0)
    }

    static func checked<T: Comparable>(_ value: T?, _ name: String, _ range: ClosedRange<T>) throws(JobError) -> T? {
        guard let value else { return nil }
        guard range.contains(value) else { throw .invalid("\(name) must be in \(range)") }
        return value
    }

    // MARK: running

    /// Takes queued jobs one after another: trains and validates on `thread`, deploys here.
    func runner(on thread: TrainingThread) async {
        while let (id, cancel) = await queue.next() {
            guard let job = queue.job(id), job.status == .queued else {
                cleanUpConversion(id)
                continue
            }
            let training = TrainingRun(queue: queue, store: store, data: data)
            let conversion = ConversionRun(queue: queue, data: data)
            let publisher = self.publisher
            defer { cleanUpConversion(id) }
            do {
                let candidate = try await thread.run {
                    let outcome = job.object == .conversion ? try conversion.run(job, cancel: cancel) : try training.run(job, cancel: cancel)
                    // A conversion runs to its end once started: a cancel that came meanwhile wins here.
                    if cancel.isCancelled { throw TrainingCancelled(epoch: 0) }
                    return try publisher.prepare(job, outcome)
                }
                try await publisher.deploy(job, candidate)
                if queue.job(id)?.status == .succeeded { queueFineTuningAfter(job) }
            } catch is TrainingCancelled {
                queue.finishCancelled(id)
            } catch JobError.invalid(let message) {
                queue.fail(id, code: .invalidFiles, message)
            } catch JobPublishFailure.loadFailed(let reason) {
                queue.fail(id, code: .loadFailed, "the new version failed to load: \(reason)")
            } catch  where job.object == .conversion {
                queue.fail(id, code: .conversionFailed, "\(error)")
            } catch {
                let checkpoint = queue.jobStore.checkpointDirectory(id)
                queue.fail(id, code: .trainingFailed, "\(error)", resumable: TrainingCheckpoint.exists(at: checkpoint))
            }
        }
    }
}

/// A serial thread for training work, limited to `cores` cores, awaited without blocking the
/// caller (the numeric work never runs on the cooperative pool).
final class TrainingThread: Sendable {
    let queue: DispatchQueue
    let cores: Int

    init(name: String, cores: Int) {
        queue = DispatchQueue(label: name)
        self.cores = cores
    }

    func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { c in
            queue.async { [cores] in
                // The limit is per thread and Dispatch reuses its threads: lift it afterwards.
                Parallelism.limitCurrentThread(to: cores)
                defer { Parallelism.limitCurrentThread(to: 0) }
                c.resume(with: Result { try work() })
            }
        }
    }
}
