import Foundation
import Logging
import SNN

/// Turns a finished training run into a served version: write it (`ModelStore.publish`), load it
/// beside the current default, validate both on the job's validation data, and — when allowed —
/// warm it through the scheduler, flip the default and prune old versions. Requests in flight
/// finish on the version they started on.
struct VersionPublisher: Sendable {
    let queue: JobQueue
    let store: ModelStore
    let scheduler: InferenceScheduler
    let keepVersions: Int
    let logger: Logger
    let onVersionChange: @Sendable (String) -> Void

    /// A loaded, validated new version and whether it may be deployed.
    struct Candidate: Sendable {
        var version: ModelStore.Version
        var accuracy: Double
        /// The current default's accuracy (nil for a new model).
        var baseline: Double?
        /// Why it must not be deployed, if it must not.
        var refusal: String?
    }

    /// Writes, loads and validates the new version (CPU-heavy: on the runner thread).
    func prepare(_ job: JobRecord, _ outcome: TrainingRun.Outcome) throws -> Candidate {
        let id = job.id
        // The number is recorded before the directory is written, so a job resumed after a crash
        // in this window publishes the same version instead of a second one.
        let number: Int
        if let recorded = queue.job(id)?.result?.modelVersion {
            number = recorded
        } else {
            number = store.nextVersionNumber(job.model)
            queue.update(id) { $0.result = .init(modelVersion: number, deployed: false, valAccuracy: nil, baselineAccuracy: nil) }
        }
        let version: ModelStore.Version
        switch try store.publish(outcome.tuned, as: job.model, number: number) {
        case .ready(let v): version = v
        case .failed(let reason): throw JobPublishFailure.loadFailed(reason)
        }
        queue.emit(id, type: "message", "published version \(number)")
        let t = job.hyperparameters.timesteps
        let accuracy = try FineTuner.accuracy(of: version.model, on: outcome.validation, timesteps: t)
        // A new model (a conversion job) has no current default to compare with.
        var baseline: Double? = nil
        if let current = try? store.resolve(job.model), current.number != number {
            let b = try FineTuner.accuracy(of: current.model, on: outcome.validation, timesteps: t)
            baseline = b
            queue.emit(
                id, type: "metrics",
                String(format: "validation at T=%d: new version %.4f, current default v%d %.4f", t, accuracy, current.number, b),
                data: ["new_accuracy": accuracy, "baseline_accuracy": b])
        } else {
            queue.emit(id, type: "metrics", String(format: "validation at T=%d: %.4f", t, accuracy), data: ["new_accuracy": accuracy])
        }
        var refusal: String? = nil
        if let m = job.minAccuracy, accuracy < m {
            refusal = String(format: "validation accuracy %.4f is below min_accuracy %.4f", accuracy, m)
        } else if let baseline, !job.force && accuracy < baseline {
            refusal = String(
                format: "validation accuracy %.4f is below the current version's %.4f (set \"force\": true to deploy anyway)", accuracy, baseline)
        }
        return Candidate(version: version, accuracy: accuracy, baseline: baseline, refusal: refusal)
    }

    /// Warms and deploys an accepted candidate (when the job asks for it) and finishes the job.
    func deploy(_ job: JobRecord, _ candidate: Candidate) async throws {
        let id = job.id, number = candidate.version.number
        var deployed = false
        if candidate.refusal == nil && job.autoDeploy {
            // One inference through the scheduler before it takes traffic.
            let version = candidate.version
            let warm = InferenceScheduler.Job(
                input: [Float](repeating: 0, count: version.model.description.inputSpec.count), seed: 0, trace: false, deadline: nil)
            _ = try? await scheduler.submit(warm, version: version, timesteps: version.snn.defaultTimesteps)
            store.markWarmed(job.model, version: number)
            try store.setDefault(job.model, version: number)
            deployed = true
            onVersionChange(job.model)
            queue.emit(id, type: "status", "version \(number) is now the default")
            for n in store.prune(job.model, keep: keepVersions) {
                logger.info("removed old version", metadata: ["model": "\(job.model)", "version": "\(n)"])
            }
        }
        queue.update(id) { j in
            j.result = .init(modelVersion: number, deployed: deployed, valAccuracy: candidate.accuracy, baselineAccuracy: candidate.baseline)
            if let refusal = candidate.refusal {
                j.status = .failed
                j.error = .init(code: APIError.Code.validationFailed.rawValue, message: refusal + "; version \(number) was kept but not deployed")
            } else {
                j.status = .succeeded
            }
            j.finishedAt = unixNow()
            j.progress.fraction = 1
        }
        if let refusal = candidate.refusal {
            queue.emit(id, level: "error", type: "status", "not deployed: \(refusal)")
        } else {
            queue.emit(id, type: "status", "job succeeded")
        }
    }
}

/// A published version that does not load.
enum JobPublishFailure: Error {
    case loadFailed(String)
}
