import Dispatch
import Foundation
import NativeBridge
import SNN
import Synchronization
import TensorKit

/// Owns the numeric cores. HTTP handlers never run the engine themselves: they submit images here
/// and await the result. `workers` threads (one by default) take batches off the queue and run the
/// engine, each spreading its batch over its share of the cores.
///
/// Dynamic batching: requests for the same model version and time-step budget are merged into one
/// engine call of up to `maxBatchSize` images. The batch size is chosen from the load: a batch
/// starts as soon as as many images wait as the previous batch held (so a lone client never waits
/// for company, and under load batches keep their size instead of splitting into halves that run
/// while the cores serve HTTP), when it is full, or when its oldest image has waited
/// `maxQueueDelay`. The queue is bounded; when full, `submit` fails at once (the API answers 429).
public final class InferenceScheduler: Sendable {
    public struct Configuration: Sendable {
        /// Most images in one engine call. Default 32.
        public var maxBatchSize = 32
        /// Longest a request waits for others to share its batch. Default 2 ms. A request waits only
        /// while the previous batch was larger than what is queued (load just fell, or a burst is
        /// still arriving); a lone client's requests start at once.
        public var maxQueueDelay: Duration = .milliseconds(2)
        /// Images a batch waits for (up to `maxQueueDelay`) before it starts. Default nil: the size
        /// of the previous batch, which follows the load.
        public var preferredBatchSize: Int?
        /// Most images waiting at once; beyond it requests are refused. Default 512.
        public var maxQueuedImages = 512
        /// Long batches run in chunks of at most this many image·steps (e.g. 2 images at T = 512),
        /// so that between chunks images whose deadline passed or whose client went away are
        /// dropped instead of computed. Default 1024: at T ≤ 32 a batch of 32 is one chunk.
        public var maxImageStepsPerChunk = 1024
        /// Inference threads, each running its batches on machine cores / workers cores. Default 1.
        /// (On 2 cores, two one-core workers gave 12–20% fewer requests/s under 32-connection load
        /// than one worker on both cores: docs/performance.md.)
        public var workers = 1
        public init() {}
    }

    /// What one image asks of the engine.
    public struct Job: Sendable {
        public var input: [Float]
        public var seed: UInt64
        public var trace: Bool
        public var deadline: ContinuousClock.Instant?
        public init(input: [Float], seed: UInt64, trace: Bool, deadline: ContinuousClock.Instant?) {
            self.input = input
            self.seed = seed
            self.trace = trace
            self.deadline = deadline
        }
    }

    public struct Outcome: Sendable {
        public var potentials: [Float]
        public var scores: [Float]
        /// False when the output potentials decided nothing (see `SpikingEngine.Result.decisions`).
        public var decided: Bool
        public var trace: [[Float]]?
        public var spikes: Int
        public var synapticOps: Int
        /// This image's spikes per spiking layer, and each layer's neuron count.
        public var layerSpikes: [Int]
        public var layerNeurons: [Int]
        public var queueSeconds: Double
        public var computeSeconds: Double
        public var batchSize: Int
        /// Steps the image ran, and why it stopped there (adaptive steps stop settled images early).
        public var timestepsUsed: Int
        public var exit: ExitReason
    }

    public enum Failure: Error, Sendable, Equatable {
        case queueFull(limit: Int)
        case deadlineExceeded
        case shuttingDown
        /// The request's task was cancelled (its client went away) before its image was computed.
        case cancelled
    }

    /// Why queued or running work was dropped (for metrics).
    public enum DropReason: String, Sendable {
        case deadline, cancelled
    }

    struct Key: Hashable, Sendable {
        var model: String
        var version: Int
        var timesteps: Int
        /// Adaptive time steps' policy; images with different policies are not batched together.
        var exit: ExitPolicy?
    }

    struct Pending: Sendable {
        var id: UInt64
        var job: Job
        var version: ModelStore.Version
        var enqueued: ContinuousClock.Instant
        var continuation: CheckedContinuation<Outcome, any Error>
    }

    struct State {
        var queues: [Key: [Pending]] = [:]
        var queued = 0
        var stopped = false
        /// Size of the batch most recently started: how many images the load brings per batch.
        var lastBatchSize: [Key: Int] = [:]
        var nextID: UInt64 = 0
        /// Deadlines of the images not answered yet (only those: an answered image leaves no timer).
        var deadlines: [UInt64: ContinuousClock.Instant] = [:]
        /// Images taken by a worker and not answered yet. Whoever removes an entry (the worker
        /// with a result, or `abandon`) resumes its continuation: exactly once.
        var running: [UInt64: Pending] = [:]
    }

    public let configuration: Configuration
    let state = Mutex(State())
    let wakeup = DispatchSemaphore(value: 0)
    /// Wakes the deadline thread when a deadline is added or the scheduler stops.
    let deadlineWake = DispatchSemaphore(value: 0)
    let observer: (@Sendable (BatchReport) -> Void)?
    let dropObserver: (@Sendable (_ model: String, _ reason: DropReason) -> Void)?

    /// What the worker reports after each batch (for metrics).
    public struct BatchReport: Sendable {
        public var model: String
        public var version: Int
        public var timesteps: Int
        public var size: Int
        public var computeSeconds: Double
        public var spikes: Int
    }

    public init(
        configuration: Configuration = .init(), observer: (@Sendable (BatchReport) -> Void)? = nil,
        dropObserver: (@Sendable (_ model: String, _ reason: DropReason) -> Void)? = nil
    ) {
        self.configuration = configuration
        self.observer = observer
        self.dropObserver = dropObserver
        let workers = max(1, configuration.workers)
        let coresEach = max(1, Parallelism.machineCores / workers)
        let deadlines = Thread { [self] in deadlineLoop() }
        deadlines.name = "spikeserve-deadlines"
        deadlines.start()
        for w in 0..<workers {
            let thread = Thread { [self] in
                Parallelism.limitCurrentThread(to: coresEach)
                self.workerLoop()
            }
            thread.name = "spikeserve-inference-\(w)"
            thread.start()
        }
    }

    public var queuedImages: Int { state.withLock { $0.queued } }

    /// Runs one image through `version` at `timesteps`, batched with others.
    ///
    /// The job's deadline holds while it waits: at the deadline a queued image is dropped and the
    /// call fails with `deadlineExceeded`, whatever the worker is busy with; a running one is
    /// dropped at the next chunk boundary. Cancelling the calling task (the HTTP server does when
    /// the client resets) drops the image the same way and fails with `cancelled`.
    public func submit(_ job: Job, version: ModelStore.Version, timesteps: Int, exit: ExitPolicy? = nil) async throws -> Outcome {
        let key = Key(model: version.name, version: version.number, timesteps: timesteps, exit: exit)
        let id = state.withLock { s in
            s.nextID &+= 1
            return s.nextID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let refusal: Failure? = state.withLock { s in
                    if s.stopped { return .shuttingDown }
                    if s.queued >= configuration.maxQueuedImages { return .queueFull(limit: configuration.maxQueuedImages) }
                    s.queues[key, default: []].append(Pending(id: id, job: job, version: version, enqueued: .now, continuation: continuation))
                    if let deadline = job.deadline { s.deadlines[id] = deadline }
                    s.queued += 1
                    return nil
                }
                if let refusal {
                    continuation.resume(throwing: refusal)
                    return
                }
                wakeup.signal()
                if job.deadline != nil { deadlineWake.signal() }
                if Task.isCancelled { abandon(id, because: .cancelled) }
            }
        } onCancel: {
            abandon(id, because: .cancelled)
        }
    }

    /// Drops image `id` if it is still queued or running, failing its call with `failure`.
    func abandon(_ id: UInt64, because failure: Failure) {
        let dropped: Pending? = state.withLock { s in
            s.deadlines[id] = nil
            for (key, items) in s.queues {
                if let i = items.firstIndex(where: { $0.id == id }) {
                    var rest = items
                    let p = rest.remove(at: i)
                    s.queues[key] = rest.isEmpty ? nil : rest
                    s.queued -= 1
                    return p
                }
            }
            return s.running.removeValue(forKey: id)
        }
        guard let dropped else { return }
        dropped.continuation.resume(throwing: failure)
        dropObserver?(dropped.version.name, failure == .cancelled ? .cancelled : .deadline)
    }

    public func stop() {
        let pending = state.withLock { s -> [Pending] in
            s.stopped = true
            let all = s.queues.values.flatMap { $0 }
            s.queues = [:]
            s.queued = 0
            for p in all { s.deadlines[p.id] = nil }
            return all
        }
        for p in pending { p.continuation.resume(throwing: Failure.shuttingDown) }
        wakeup.signal()
        deadlineWake.signal()
    }

    /// The deadline thread: sleeps until the earliest deadline of an image not yet answered, then
    /// drops every image whose deadline passed (queued or between chunks). On its own thread, so a
    /// busy cooperative pool or inference thread cannot delay a 504.
    func deadlineLoop() {
        while true {
            let (due, next, stopped) = state.withLock { s -> ([UInt64], ContinuousClock.Instant?, Bool) in
                let now = ContinuousClock.now
                return (s.deadlines.filter { $0.value <= now }.map(\.key), s.deadlines.values.filter { $0 > now }.min(), s.stopped)
            }
            if stopped { return }
            for id in due { abandon(id, because: .deadlineExceeded) }
            if let next {
                _ = deadlineWake.wait(timeout: .now() + max(0, (next - ContinuousClock.now).seconds))
            } else if due.isEmpty {
                deadlineWake.wait()
            }
        }
    }

    /// What the worker does next.
    enum Decision {
        case run([Pending], Key)
        /// Sleep until woken by a new image, or until the oldest image is due (nil: no image waits).
        case sleep(seconds: Double?)
        case stop
    }

    /// Picks the key whose oldest image has waited longest; returns its batch once it is full or
    /// old enough, else how long to sleep before it will be.
    func nextBatch() -> (batch: [Pending], key: Key)? {
        while true {
            let decision: Decision = state.withLock { s in
                if s.stopped { return .stop }
                guard !s.queues.isEmpty else { return .sleep(seconds: nil) }
                // Keys in order of their oldest image; the first that is ready runs, so a key
                // waiting for company never holds back another key's full batch.
                let now = ContinuousClock.now
                var soonest: Duration? = nil
                for (key, items) in s.queues.sorted(by: { $0.value[0].enqueued < $1.value[0].enqueued }) {
                    let age = now - items[0].enqueued
                    let expected = min(configuration.maxBatchSize, configuration.preferredBatchSize ?? s.lastBatchSize[key] ?? 1)
                    guard items.count >= expected || age >= configuration.maxQueueDelay else {
                        let wait = configuration.maxQueueDelay - age
                        soonest = min(soonest ?? wait, wait)
                        continue
                    }
                    let take = Array(items.prefix(configuration.maxBatchSize))
                    let rest = Array(items.dropFirst(take.count))
                    s.queues[key] = rest.isEmpty ? nil : rest
                    s.queued -= take.count
                    for p in take { s.running[p.id] = p }
                    s.lastBatchSize[key] = take.count
                    // Leave a wake-up for another worker when images remain.
                    if s.queued > 0 { wakeup.signal() }
                    return .run(take, key)
                }
                return .sleep(seconds: soonest?.seconds)
            }
            switch decision {
            case .run(let batch, let key): return (batch, key)
            case .stop:
                wakeup.signal()  // pass the stop on to the next sleeping worker
                return nil
            case .sleep(nil): wakeup.wait()
            case .sleep(let seconds?): _ = wakeup.wait(timeout: .now() + .microseconds(Int(seconds * 1e6) + 1))
            }
        }
    }

    func workerLoop() {
        var engines = EngineCache()
        while let (batch, key) = nextBatch() {
            let chunk = max(1, configuration.maxImageStepsPerChunk / max(1, key.timesteps))
            var reports: [(size: Int, compute: Double, spikes: Int)] = []
            var next = 0
            while next < batch.count {
                // Between chunks: drop what expired; what was abandoned is no longer running.
                let now = ContinuousClock.now
                for p in batch[next...] where (p.job.deadline.map { $0 < now } ?? false) { abandon(p.id, because: .deadlineExceeded) }
                let live = state.withLock { s in batch[next...].filter { s.running[$0.id] != nil }.prefix(chunk) }
                guard let last = live.last else { break }
                next = batch.firstIndex { $0.id == last.id }! + 1
                reports.append(run(Array(live), key: key, batchSize: batch.count, engines: &engines))
            }
            if !reports.isEmpty {
                observer?(
                    BatchReport(
                        model: key.model, version: key.version, timesteps: key.timesteps,
                        size: reports.reduce(0) { $0 + $1.size }, computeSeconds: reports.reduce(0) { $0 + $1.compute },
                        spikes: reports.reduce(0) { $0 + $1.spikes }))
            }
        }
    }

    /// Computes one chunk of a batch and answers its images (those still running).
    func run(_ live: [Pending], key: Key, batchSize: Int, engines: inout EngineCache) -> (size: Int, compute: Double, spikes: Int) {
        let version = live[0].version
        let spec = version.model.description.inputSpec
        var input = Tensor(shape: [live.count, spec.channels, spec.height, spec.width])
        for (i, p) in live.enumerated() {
            input.scalars.replaceSubrange(i * spec.count..<(i + 1) * spec.count, with: p.job.input)
        }
        let start = ContinuousClock.now
        // Versions in the store are validated SNNs, so creating their engine cannot fail.
        let result = try! engines.run(
            input, version: version,
            options: .init(
                timesteps: key.timesteps, seeds: live.map(\.job.seed),
                trace: live.contains { $0.job.trace }, exit: key.exit))
        let compute = (ContinuousClock.now - start).seconds
        let k = version.model.description.labels.count
        let decisions = result.decisions
        for (i, p) in live.enumerated() {
            let outcome = Outcome(
                potentials: Array(result.potentials.scalars[i * k..<(i + 1) * k]), scores: result.scores(image: i),
                decided: decisions[i] != nil,
                trace: p.job.trace ? result.trace?[i] : nil, spikes: result.spikes[i], synapticOps: result.synapticOps[i],
                layerSpikes: result.imageLayerSpikes[i], layerNeurons: result.layerNeurons,
                queueSeconds: (start - p.enqueued).seconds, computeSeconds: compute, batchSize: batchSize,
                timestepsUsed: result.timestepsUsed[i], exit: result.exits[i])
            if let d = p.job.deadline, d < ContinuousClock.now {
                abandon(p.id, because: .deadlineExceeded)
            } else if let mine = state.withLock({ s in
                s.deadlines[p.id] = nil
                return s.running.removeValue(forKey: p.id)
            }) {
                mine.continuation.resume(returning: outcome)
            }
        }
        return (live.count, compute, result.spikes.reduce(0, +))
    }
}
