import Foundation
import Logging
import SNN
import Synchronization

/// The jobs and their state: records and event logs (persisted by `JobStore`), the queue, cancel
/// flags and recovery after a restart. Runners (`JobManager`) take queued jobs with `next()`;
/// training itself is `TrainingRun`'s, publishing `VersionPublisher`'s.
final class JobQueue: Sendable {
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
        /// Runners waiting for a job.
        var waiters: [CheckedContinuation<(String, CancelFlag)?, Never>] = []
        var stopped = false

        /// Hands queued jobs to waiting runners; returns the hand-overs to resume outside the lock.
        mutating func dispatch() -> [(CheckedContinuation<(String, CancelFlag)?, Never>, (String, CancelFlag))] {
            var handed: [(CheckedContinuation<(String, CancelFlag)?, Never>, (String, CancelFlag))] = []
            while !waiters.isEmpty && !queue.isEmpty {
                let id = queue.removeFirst()
                handed.append((waiters.removeFirst(), (id, cancelFlags[id] ?? CancelFlag())))
            }
            return handed
        }
    }

    let jobStore: JobStore
    let maxQueued: Int
    let logger: Logger
    let state = Mutex(State())

    init(jobStore: JobStore, maxQueued: Int, logger: Logger) {
        self.jobStore = jobStore
        self.maxQueued = maxQueued
        self.logger = logger
        recover()
    }

    /// The next queued job, waiting (suspended, no thread held) while there is none; nil once
    /// stopped.
    func next() async -> (String, CancelFlag)? {
        await withCheckedContinuation { c in
            typealias Handover = (CheckedContinuation<(String, CancelFlag)?, Never>, (String, CancelFlag))
            let (stopped, handed) = state.withLock { s -> (Bool, [Handover]) in
                if s.stopped { return (true, []) }
                s.waiters.append(c)
                return (false, s.dispatch())
            }
            if stopped { c.resume(returning: nil) }
            for (waiter, job) in handed { waiter.resume(returning: job) }
        }
    }

    /// Wakes waiting runners for newly queued jobs.
    func dispatch() {
        for (waiter, job) in state.withLock({ $0.dispatch() }) { waiter.resume(returning: job) }
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

    func stop() {
        let waiters = state.withLock { s in
            s.stopped = true
            for flag in s.cancelFlags.values { flag.cancel() }
            defer { s.waiters = [] }
            return s.waiters
        }
        for waiter in waiters { waiter.resume(returning: nil) }
    }

    // MARK: queries

    func job(_ id: String) -> JobRecord? { state.withLock { $0.jobs[id] } }

    func list(status: JobRecord.Status?, limit: Int, after: String?) -> [JobRecord] {
        let all = state.withLock { s in s.jobs.values.sorted { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) } }
        var filtered = all.filter { status == nil || $0.status == status }
        if let after, let i = filtered.firstIndex(where: { $0.id == after }) { filtered = Array(filtered[(i + 1)...]) }
        return Array(filtered.prefix(limit))
    }

    func events(_ id: String, after: Int, limit: Int) -> [JobEvent] {
        state.withLock { s in Array((s.events[id] ?? []).filter { $0.id > after }.prefix(limit)) }
    }

    /// The job's epoch checkpoints on disk: the latest and the best so far.
    func checkpoints(_ id: String) -> [CheckpointInfo] {
        let dir = jobStore.checkpointDirectory(id)
        var out: [CheckpointInfo] = []
        for name in [dir, dir + "-best"] where FileManager.default.fileExists(atPath: name + "/model.json") {
            let attributes = try? FileManager.default.attributesOfItem(atPath: name + "/model.json")
            let date = (attributes?[.modificationDate] as? Date).map { ISO8601DateFormatter().string(from: $0) } ?? ""
            out.append(CheckpointInfo(kind: name.hasSuffix("-best") ? .best : .latest, path: name, updatedAt: date))
        }
        return out
    }

    // MARK: commands

    /// Queues a validated job and persists it.
    func enqueue(_ job: JobRecord, description: String) throws(JobError) {
        let accepted = state.withLock { s -> Bool in
            guard s.queue.count < maxQueued else { return false }
            s.jobs[job.id] = job
            s.cancelFlags[job.id] = CancelFlag()
            return true
        }
        guard accepted else { throw .queueFull(limit: maxQueued) }
        // Saved and announced before a runner can take it, so its record never goes back to queued.
        do { try jobStore.save(job) } catch {
            state.withLock { s in
                s.jobs[job.id] = nil
                s.cancelFlags[job.id] = nil
            }
            throw .storage("cannot persist the job: \(error)")
        }
        emit(job.id, type: "status", description)
        state.withLock { s in if s.jobs[job.id]?.status == .queued { s.queue.append(job.id) } }
        dispatch()
    }

    func cancel(_ id: String) throws(JobError) -> JobRecord {
        let outcome: Result<JobRecord, JobError> = state.withLock { s in
            guard var job = s.jobs[id] else { return .failure(.unknownJob(id)) }
            if job.status.isTerminal { return .failure(.notCancellable(id, job.status)) }
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

    /// Queues a failed job that was marked resumable again; it continues from its checkpoint.
    func resume(_ id: String) throws(JobError) -> JobRecord {
        let outcome: Result<JobRecord, JobError> = state.withLock { s in
            guard var job = s.jobs[id] else { return .failure(.unknownJob(id)) }
            guard job.status == .failed && job.resumable else { return .failure(.notResumable(id, job.status)) }
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
        dispatch()
        return job
    }

    // MARK: recording progress

    /// Changes a job's record; `persist` false keeps the change in memory only (frequent progress).
    func update(_ id: String, persist: Bool = true, _ change: (inout JobRecord) -> Void) {
        let job: JobRecord? = state.withLock { s in
            guard var job = s.jobs[id] else { return nil }
            change(&job)
            s.jobs[id] = job
            return job
        }
        if persist, let job { try? jobStore.save(job) }
    }

    func emit(_ id: String, level: String = "info", type: String, _ message: String, data: [String: Double]? = nil) {
        let event: JobEvent = state.withLock { s in
            let e = JobEvent(id: (s.events[id]?.last?.id ?? 0) + 1, createdAt: unixNow(), level: level, type: type, message: message, data: data)
            s.events[id, default: []].append(e)
            return e
        }
        try? jobStore.append(event, to: id)
    }

    func fail(_ id: String, code: APIError.Code, _ message: String, resumable: Bool = false) {
        update(id) { job in
            job.status = .failed
            job.finishedAt = unixNow()
            job.error = .init(code: code.rawValue, message: message)
            job.resumable = resumable
        }
        emit(id, level: "error", type: "status", "job failed: \(message)")
        logger.error("fine-tuning job failed", metadata: ["job": "\(id)", "error": "\(message)"])
    }

    func finishCancelled(_ id: String) {
        update(id) {
            $0.status = .cancelled
            $0.finishedAt = unixNow()
        }
        emit(id, type: "status", "job cancelled")
    }
}
