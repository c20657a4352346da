import Foundation
import Imaging
import Logging
import NativeBridge
import SNN
import Synchronization

/// Runs asynchronous fine-tuning jobs one at a time on a training thread that uses at most
/// `coreShare` of the cores, publishes each result as a new model version, and deploys it once
/// it has been loaded, warmed and validated: load beside the current version, warm, validate,
/// flip the default, let requests in flight finish on the version they started on.
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

    final class CancelFlag: CancellationCheck, Sendable {
        let flag = Mutex(false)
        var isCancelled: Bool { flag.withLock { $0 } }
        func cancel() { flag.withLock { $0 = true } }
    }

    struct State {
        var jobs: [String: JobRecord] = [:]
        var events: [String: [JobEvent]] = [:]
        var queue: [String] = []
        var cancelFlags: [String: CancelFlag] = [:]
        var stopped = false
    }

    public let configuration: Configuration
    let store: ModelStore
    let scheduler: InferenceScheduler
    let jobStore: JobStore
    let logger: Logger
    let state = Mutex(State())
    let wakeup = DispatchSemaphore(value: 0)
    let onVersionChange: @Sendable (String) -> Void

    public init(
        configuration: Configuration, store: ModelStore, scheduler: InferenceScheduler, logger: Logger,
        onVersionChange: @escaping @Sendable (String) -> Void = { _ in }
    ) throws {
        self.configuration = configuration
        self.store = store
        self.scheduler = scheduler
        self.logger = logger
        self.onVersionChange = onVersionChange
        jobStore = try JobStore(stateDirectory: configuration.stateDirectory)
        recover()
        for i in 0..<max(1, configuration.maxConcurrentJobs) {
            let thread = Thread { [self] in runnerLoop() }
            thread.name = "spikeserve-training-\(i)"
            thread.start()
        }
    }

    /// After a restart: finished jobs stay as they are; a job that was running continues from its
    /// last epoch checkpoint; queued ones are queued again.
    func recover() {
        for (job, events) in jobStore.loadAll() {
            var job = job
            var events = events
            if !job.status.isTerminal {
                let wasRunning = job.status == .running || job.status == .cancelling
                if job.status == .cancelling {
                    job.status = .cancelled
                    job.finishedAt = unixNow()
                } else {
                    job.status = .queued
                    job.resumable = wasRunning
                }
                let hasCheckpoint = TrainingCheckpoint.exists(at: jobStore.checkpointDirectory(job.id))
                let message =
                    !wasRunning
                    ? "server restarted; the job is \(job.status.rawValue)"
                    : hasCheckpoint
                        ? "server restarted; the job resumes from its last checkpoint"
                        : "server restarted before the first epoch checkpoint; the job starts again"
                let note = JobEvent(id: (events.last?.id ?? 0) + 1, createdAt: unixNow(), level: "warning", type: "status", message: message)
                events.append(note)
                try? jobStore.save(job)
                try? jobStore.append(note, to: job.id)
            }
            let finalJob = job, finalEvents = events
            state.withLock { s in
                s.jobs[finalJob.id] = finalJob
                s.events[finalJob.id] = finalEvents
                if finalJob.status == .queued { s.queue.append(finalJob.id); s.cancelFlags[finalJob.id] = CancelFlag() }
            }
        }
    }

    public func stop() {
        state.withLock { s in
            s.stopped = true
            for flag in s.cancelFlags.values { flag.cancel() }
        }
        for _ in 0..<max(1, configuration.maxConcurrentJobs) { wakeup.signal() }
    }

    // MARK: queries

    public func job(_ id: String) -> JobRecord? { state.withLock { $0.jobs[id] } }

    public func list(status: JobRecord.Status?, limit: Int, after: String?) -> [JobRecord] {
        let all = state.withLock { s in s.jobs.values.sorted { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) } }
        var filtered = all.filter { status == nil || $0.status == status }
        if let after, let i = filtered.firstIndex(where: { $0.id == after }) { filtered = Array(filtered[(i + 1)...]) }
        return Array(filtered.prefix(limit))
    }

    public func events(_ id: String, after: Int, limit: Int) -> [JobEvent] {
        state.withLock { s in Array((s.events[id] ?? []).filter { $0.id > after }.prefix(limit)) }
    }

    public func checkpoints(_ id: String) -> [[String: String]] {
        let dir = jobStore.checkpointDirectory(id)
        var out: [[String: String]] = []
        for name in [dir, dir + "-best"] where FileManager.default.fileExists(atPath: name + "/model.json") {
            let attributes = try? FileManager.default.attributesOfItem(atPath: name + "/model.json")
            let date = (attributes?[.modificationDate] as? Date).map { ISO8601DateFormatter().string(from: $0) } ?? ""
            out.append(["kind": name.hasSuffix("-best") ? "best" : "latest", "path": name, "updated_at": date])
        }
        return out
    }

    // MARK: commands

    /// Validates a request and queues the job. Throws 400 for anything wrong: nothing is queued then.
    public func create(_ body: [String: Any]) throws(APIError) -> JobRecord {
        guard let model = body["model"] as? String, !model.isEmpty else { throw .badRequest("\"model\" is required") }
        let base: ModelStore.Version
        do { base = try store.resolve(model) } catch { throw .badRequest("\(error)", code: "invalid_model") }
        guard let trainingData = body["training_data"] as? String, !trainingData.isEmpty else {
            throw .badRequest("\"training_data\" is required: a path under the data root or a dataset id")
        }
        var hp = JobRecord.Hyperparameters()
        hp.timesteps = base.model.description.snn!.defaultTimesteps
        if let h = body["hyperparameters"] {
            guard let h = h as? [String: Any] else { throw .badRequest("\"hyperparameters\" must be an object") }
            func int(_ k: String, _ range: ClosedRange<Int>) throws(APIError) -> Int? {
                guard let v = h[k] else { return nil }
                guard let n = JSONField.int(v), range.contains(n) else { throw .badRequest("hyperparameters.\(k) must be an integer in \(range)") }
                return n
            }
            func num(_ k: String, _ range: ClosedRange<Double>) throws(APIError) -> Double? {
                guard let v = h[k] else { return nil }
                guard let n = JSONField.double(v), range.contains(n) else { throw .badRequest("hyperparameters.\(k) must be a number in \(range)") }
                return n
            }
            let maxT = base.model.description.snn!.maxTimesteps
            hp.timesteps = try int("timesteps", 1...maxT) ?? hp.timesteps
            hp.epochs = try int("epochs", 1...1000) ?? hp.epochs
            hp.batchSize = try int("batch_size", 1...1024) ?? hp.batchSize
            hp.limit = try int("limit", 1...100_000_000)
            hp.learningRate = try num("learning_rate", 1e-9...1) ?? hp.learningRate
            hp.alpha = Float(try num("alpha", 1e-6...100) ?? Double(hp.alpha))
            hp.beta = Float(try num("beta", 0...100) ?? Double(hp.beta))
            if let s = h["surrogate"] {
                guard let name = s as? String, let kind = SurrogateKind(rawValue: name) else {
                    throw .badRequest("hyperparameters.surrogate must be stdb or linear")
                }
                hp.surrogate = kind
            }
        }
        if let v = body["validation_split"], JSONField.double(v) == nil { throw .badRequest("validation_split must be a number in (0, 1)") }
        let split = JSONField.double(body["validation_split"]) ?? 0.1
        guard split > 0 && split < 1 else { throw .badRequest("validation_split must be in (0, 1)") }
        for key in ["auto_deploy", "force"] {
            if let v = body[key], JSONField.bool(v) == nil { throw .badRequest("\(key) must be true or false") }
        }
        if let v = body["seed"], JSONField.int(v).map({ $0 >= 0 }) != true { throw .badRequest("seed must be a non-negative integer") }
        if let v = body["validation_data"], !(v is String) || JSONField.isBoolean(v) { throw .badRequest("validation_data must be a string") }
        let validationData = body["validation_data"] as? String
        // Resolve paths now, so a bad request fails before anything is queued.
        let folder = try resolveData(trainingData)
        guard folder.classes == base.model.description.labels else {
            throw .badRequest("training data classes \(folder.classes) do not match the model's labels \(base.model.description.labels)")
        }
        if let validationData {
            let v = try resolveData(validationData)
            guard v.classes == folder.classes else { throw .badRequest("validation data classes differ from the training data's") }
        }
        if let v = body["min_accuracy"], JSONField.double(v).map({ (0...1).contains($0) }) != true {
            throw .badRequest("min_accuracy must be a number in [0, 1]")
        }
        let minAccuracy = JSONField.double(body["min_accuracy"])
        let id = "ftjob_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
        let job = JobRecord(
            id: String(id), model: model, baseVersion: base.number, status: .queued, createdAt: unixNow(),
            trainingData: trainingData, validationData: validationData, validationSplit: split, hyperparameters: hp,
            autoDeploy: JSONField.bool(body["auto_deploy"]) ?? true, minAccuracy: minAccuracy, force: JSONField.bool(body["force"]) ?? false,
            resumable: false, seed: JSONField.int(body["seed"]).map { UInt64(max(0, $0)) } ?? 0)
        let accepted = state.withLock { s -> Bool in
            guard s.queue.count < configuration.maxQueuedJobs else { return false }
            s.jobs[job.id] = job
            s.queue.append(job.id)
            s.cancelFlags[job.id] = CancelFlag()
            return true
        }
        guard accepted else {
            throw APIError(429, "too_many_jobs", "\(configuration.maxQueuedJobs) jobs are already queued", headers: [("Retry-After", "60")])
        }
        do { try jobStore.save(job) } catch { throw APIError(500, "internal", "cannot persist the job: \(error)") }
        emit(job.id, type: "status", "job created: fine-tune \(model) v\(base.number) on \(trainingData)")
        wakeup.signal()
        return job
    }

    public func cancel(_ id: String) throws(APIError) -> JobRecord {
        let outcome: Result<JobRecord, APIError> = state.withLock { s in
            guard var job = s.jobs[id] else { return .failure(.notFound("job \(id) does not exist")) }
            if job.status.isTerminal { return .failure(.conflict("job \(id) already \(job.status.rawValue)")) }
            s.cancelFlags[id]?.cancel()
            if job.status == .queued {
                s.queue.removeAll { $0 == id }
                job.status = .cancelled
                job.finishedAt = unixNow()
            } else {
                job.status = .cancelling
            }
            s.jobs[id] = job
            return .success(job)
        }
        let job = try outcome.get()
        try? jobStore.save(job)
        emit(id, type: "status", "cancellation requested; status \(job.status.rawValue)")
        return job
    }

    /// Continues a failed job that was marked resumable.
    public func resume(_ id: String) throws(APIError) -> JobRecord {
        let outcome: Result<JobRecord, APIError> = state.withLock { s in
            guard var job = s.jobs[id] else { return .failure(.notFound("job \(id) does not exist")) }
            guard job.status == .failed && job.resumable else { return .failure(.conflict("job \(id) is \(job.status.rawValue) and not resumable")) }
            job.status = .queued
            job.error = nil
            job.finishedAt = nil
            s.jobs[id] = job
            s.queue.append(id)
            s.cancelFlags[id] = CancelFlag()
            return .success(job)
        }
        let job = try outcome.get()
        try? jobStore.save(job)
        emit(id, type: "status", "job resumed from its checkpoint")
        wakeup.signal()
        return job
    }

    // MARK: data

    /// Resolves a training-data reference: a dataset id (`ds_…`, uploaded) or a path under the
    /// data root — an ImageFolder directory or a .tar/.tar.gz of one. Nothing escapes the root.
    func resolveData(_ reference: String) throws(APIError) -> ImageFolder {
        var directory: String
        if reference.hasPrefix("ds_") {
            guard reference.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else { throw .badRequest("invalid dataset id") }
            directory = configuration.stateDirectory + "/datasets/" + reference
            guard FileManager.default.fileExists(atPath: directory) else { throw .badRequest("dataset \(reference) does not exist") }
        } else {
            guard let root = configuration.dataRoot else {
                throw .badRequest("paths are disabled: start the server with --data-root DIR, or upload a dataset with POST /v1/datasets")
            }
            guard !reference.hasPrefix("/"), !reference.split(separator: "/").contains(".."), !reference.contains("\0") else {
                throw .badRequest("training data must be a relative path inside the data root, without '..'")
            }
            let rootReal = URL(fileURLWithPath: root).resolvingSymlinksInPath().path
            let full = URL(fileURLWithPath: rootReal + "/" + reference).resolvingSymlinksInPath().path
            guard full == rootReal || full.hasPrefix(rootReal + "/") else { throw .badRequest("training data resolves outside the data root") }
            directory = full
            if full.hasSuffix(".tar") || full.hasSuffix(".tar.gz") || full.hasSuffix(".tgz") {
                directory = try Datasets.extractOnce(
                    archive: full, into: configuration.stateDirectory + "/extracted",
                    limits: configuration.datasetLimits)
            }
        }
        do { return try ImageFolder(root: Datasets.imageFolderRoot(directory)) } catch { throw .badRequest("training data: \(error)") }
    }

    // MARK: running

    func runnerLoop() {
        let cores = max(1, Int((Double(Parallelism.machineCores) * configuration.coreShare).rounded(.down)))
        Parallelism.limitCurrentThread(to: cores)
        while true {
            let next: (String, CancelFlag)? = state.withLock { s in
                if s.stopped { return nil }
                guard !s.queue.isEmpty else { return nil }
                let id = s.queue.removeFirst()
                return (id, s.cancelFlags[id] ?? CancelFlag())
            }
            if state.withLock({ $0.stopped }) { return }
            guard let (id, flag) = next else {
                wakeup.wait()
                continue
            }
            run(id, cancel: flag)
        }
    }

    func update(_ id: String, _ change: (inout JobRecord) -> Void) {
        let job: JobRecord? = state.withLock { s in
            guard var job = s.jobs[id] else { return nil }
            change(&job)
            s.jobs[id] = job
            return job
        }
        if let job { try? jobStore.save(job) }
    }

    func emit(_ id: String, level: String = "info", type: String, _ message: String, data: [String: Double]? = nil) {
        let event: JobEvent = state.withLock { s in
            let e = JobEvent(id: (s.events[id]?.last?.id ?? 0) + 1, createdAt: unixNow(), level: level, type: type, message: message, data: data)
            s.events[id, default: []].append(e)
            return e
        }
        try? jobStore.append(event, to: id)
    }

    func fail(_ id: String, code: String, _ message: String, resumable: Bool = false) {
        update(id) { job in
            job.status = .failed
            job.finishedAt = unixNow()
            job.error = .init(code: code, message: message)
            job.resumable = resumable
        }
        emit(id, level: "error", type: "status", "job failed: \(message)")
        logger.error("fine-tuning job failed", metadata: ["job": "\(id)", "error": "\(message)"])
    }

    func run(_ id: String, cancel: CancelFlag) {
        guard let job = self.job(id), job.status == .queued else { return }
        update(id) {
            $0.status = .validatingFiles; $0.startedAt = $0.startedAt ?? unixNow()
        }
        emit(id, type: "status", "validating files")
        // Data: load and decode everything first; a broken image fails the job here.
        let base: ModelStore.Version
        let train: ImageSet, validation: ImageSet
        do {
            base = try store.resolve(job.model, version: job.baseVersion)
            let folder = try resolveData(job.trainingData)
            var trainFolder = folder, valFolder: ImageFolder
            if let v = job.validationData {
                valFolder = try resolveData(v)
            } else {
                (trainFolder, valFolder) = folder.split(validationFraction: job.validationSplit, seed: job.seed)
            }
            let spec = base.model.description.inputSpec
            train = try ImageSet.load(trainFolder, spec: spec)
            validation = try ImageSet.load(valFolder, spec: spec)
            guard train.count > 0, validation.count > 0 else { throw APIError.badRequest("training or validation data is empty") }
        } catch {
            fail(id, code: "invalid_files", "\(error)")
            return
        }
        if cancel.isCancelled { finishCancelled(id); return }
        update(id) { $0.status = .running }
        emit(id, type: "status", "training \(train.count) images, validating on \(validation.count)")
        var config = FineTuner.Configuration()
        let hp = job.hyperparameters
        config.timesteps = hp.timesteps
        config.epochs = hp.epochs
        config.batchSize = hp.batchSize
        config.learningRate = hp.learningRate
        config.surrogate = hp.surrogate
        config.alpha = hp.alpha
        config.beta = hp.beta
        config.limit = hp.limit
        config.seed = job.seed
        let checkpoint = jobStore.checkpointDirectory(id)
        do {
            var tuner = try FineTuner(model: base.model, configuration: config)
            if TrainingCheckpoint.exists(at: checkpoint) {
                try tuner.resume(from: checkpoint)
                emit(id, type: "message", "resumed from the checkpoint after epoch \(tuner.completedEpochs)")
            }
            var lastPersist = Date.distantPast
            try tuner.run(train: train, validation: validation, checkpointDirectory: checkpoint, cancellation: cancel) { event in
                switch event {
                case .batch(let p):
                    let now = Date()
                    let persist = now.timeIntervalSince(lastPersist) > 2
                    if persist { lastPersist = now }
                    let change: (inout JobRecord) -> Void = { job in
                        job.progress = .init(
                            epoch: p.epoch, totalEpochs: p.totalEpochs, step: p.step, totalSteps: p.stepsPerEpoch,
                            fraction: p.fraction)
                        job.metrics.trainLoss = p.loss
                        job.metrics.trainAccuracy = p.accuracy
                        job.estimatedFinish = unixNow() + Int(p.secondsRemaining)
                    }
                    if persist {
                        self.update(id, change)
                    } else {
                        self.state.withLock { s in if var j = s.jobs[id] { change(&j); s.jobs[id] = j } }
                    }
                case .epochFinished(let epoch, let loss, let accuracy, let val, _):
                    self.update(id) { $0.metrics.valAccuracy = val }
                    var data = ["epoch": Double(epoch), "train_loss": loss, "train_accuracy": accuracy]
                    if let val { data["val_accuracy"] = val }
                    self.emit(
                        id, type: "metrics",
                        String(
                            format: "epoch %d: loss %.4f, train accuracy %.4f, validation accuracy %@", epoch, loss, accuracy,
                            val.map { String(format: "%.4f", $0) } ?? "n/a"), data: data)
                case .message(let m):
                    self.emit(id, type: "message", m)
                }
            }
            let tuned = tuner.finishedModel(dataDescription: job.trainingData, command: "POST /v1/fine_tuning/jobs \(id)")
            try publish(id, job: job, tuned: tuned, validation: validation, bestAccuracy: tuner.bestValidationAccuracy)
        } catch is TrainingCancelled {
            finishCancelled(id)
        } catch let error as APIError {
            fail(id, code: error.code, error.message)
        } catch {
            fail(id, code: "training_failed", "\(error)", resumable: TrainingCheckpoint.exists(at: checkpoint))
        }
    }

    func finishCancelled(_ id: String) {
        update(id) {
            $0.status = .cancelled; $0.finishedAt = unixNow()
        }
        emit(id, type: "status", "job cancelled")
    }

    /// Writes the new version, loads and warms it beside the current one, validates it and flips
    /// the default when allowed.
    func publish(_ id: String, job: JobRecord, tuned: Model, validation: ImageSet, bestAccuracy: Double) throws {
        let root = store.root + "/" + job.model
        // The version number is recorded before the directory is written, so a job resumed after
        // a crash in this window publishes the same version instead of a second one.
        let number: Int
        if let recorded = self.job(id)?.result?.modelVersion {
            number = recorded
        } else {
            number = (ModelDirectory.versionNumbers(in: root).max() ?? 0) + 1
            update(id) { $0.result = .init(modelVersion: number, deployed: false, valAccuracy: nil, baselineAccuracy: nil) }
        }
        if !FileManager.default.fileExists(atPath: root + "/\(number)/" + Model.descriptionFile) {
            var model = tuned
            model.description.name = job.model
            try model.save(to: root + "/\(number)")
        }
        let state = store.addVersion(job.model, number: number)
        guard case .ready(let version) = state else {
            if case .failed(let reason) = state { throw APIError(500, "load_failed", "the new version failed to load: \(reason)") }
            return
        }
        emit(id, type: "message", "published version \(number)")
        let t = job.hyperparameters.timesteps
        let newAccuracy = try FineTuner.accuracy(of: version.model, on: validation, timesteps: t)
        let current = try store.resolve(job.model)
        let baseline = try FineTuner.accuracy(of: current.model, on: validation, timesteps: t)
        emit(
            id, type: "metrics",
            String(format: "validation at T=%d: new version %.4f, current default v%d %.4f", t, newAccuracy, current.number, baseline),
            data: ["new_accuracy": newAccuracy, "baseline_accuracy": baseline])
        var deployed = false
        var refusal: String? = nil
        if let m = job.minAccuracy, newAccuracy < m {
            refusal = String(format: "validation accuracy %.4f is below min_accuracy %.4f", newAccuracy, m)
        } else if !job.force && newAccuracy < baseline {
            refusal = String(
                format: "validation accuracy %.4f is below the current version's %.4f (set \"force\": true to deploy anyway)", newAccuracy, baseline)
        }
        if refusal == nil && job.autoDeploy {
            // Warm the new version through the scheduler before it takes traffic.
            let spec = version.model.description.inputSpec
            let warm = InferenceScheduler.Job(input: [Float](repeating: 0, count: spec.count), seed: 0, trace: false, deadline: nil)
            let semaphore = DispatchSemaphore(value: 0)
            let scheduler = self.scheduler
            Task.detached {
                _ = try? await scheduler.submit(warm, version: version, timesteps: version.model.description.snn!.defaultTimesteps)
                semaphore.signal()
            }
            semaphore.wait()
            store.markWarmed(job.model, version: number)
            try store.setDefault(job.model, version: number)
            deployed = true
            onVersionChange(job.model)
            emit(id, type: "status", "version \(number) is now the default")
            pruneVersions(job.model)
        }
        update(id) { j in
            j.result = .init(modelVersion: number, deployed: deployed, valAccuracy: newAccuracy, baselineAccuracy: baseline)
            if let refusal {
                j.status = .failed
                j.error = .init(code: "validation_failed", message: refusal + "; version \(number) was kept but not deployed")
            } else {
                j.status = .succeeded
            }
            j.finishedAt = unixNow()
            j.progress.fraction = 1
        }
        if let refusal { emit(id, level: "error", type: "status", "not deployed: \(refusal)") } else { emit(id, type: "status", "job succeeded") }
    }

    /// Keeps the newest `keepVersions` versions and the default; removes older directories.
    func pruneVersions(_ name: String) {
        guard let entry = store.entry(name) else { return }
        let numbers = entry.versions.keys.sorted()
        guard numbers.count > configuration.keepVersions else { return }
        for n in numbers.dropLast(configuration.keepVersions) where n != entry.defaultVersion {
            store.removeVersion(name, number: n)
            try? FileManager.default.removeItem(atPath: store.root + "/\(name)/\(n)")
            logger.info("removed old version", metadata: ["model": "\(name)", "version": "\(n)"])
        }
    }
}
