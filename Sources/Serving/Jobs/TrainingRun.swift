import Foundation
import Imaging
import SNN

/// One fine-tuning run of a job, on its runner thread: load and decode the data, train with STDB
/// from the job's checkpoint if there is one, record progress and epoch metrics as events.
struct TrainingRun {
    /// What a finished run hands to the publisher.
    struct Outcome {
        var tuned: Model
        var validation: ImageSet
    }

    let queue: JobQueue
    let store: ModelStore
    let data: TrainingData

    /// Throws `TrainingCancelled` when cancelled, `JobError` when the data is unusable, anything
    /// else when training fails (the job may then resume from its checkpoint).
    func run(_ job: JobRecord, cancel: JobQueue.CancelFlag) throws -> Outcome {
        let id = job.id
        queue.update(id) {
            $0.status = .validatingFiles
            $0.startedAt = $0.startedAt ?? unixNow()
        }
        queue.emit(id, type: "status", "validating files")
        // Load and decode everything first: a broken image fails the job here.
        let base: ModelStore.Version
        let train: ImageSet, validation: ImageSet
        do {
            base = try store.resolve(job.model, version: job.baseVersion)
            let folder = try data.folder(job.trainingData)
            var trainFolder = folder, valFolder: ImageFolder
            if let v = job.validationData {
                valFolder = try data.folder(v)
            } else {
                (trainFolder, valFolder) = folder.split(validationFraction: job.validationSplit, seed: job.seed)
            }
            let spec = base.model.description.inputSpec
            train = try ImageSet.load(trainFolder, spec: spec)
            validation = try ImageSet.load(valFolder, spec: spec)
            guard train.count > 0, validation.count > 0 else { throw JobError.invalid("training or validation data is empty") }
        } catch {
            throw JobError.invalid("\(error)")
        }
        if cancel.isCancelled { throw TrainingCancelled(epoch: 0) }
        queue.update(id) { $0.status = .running }
        queue.emit(id, type: "status", "training \(train.count) images, validating on \(validation.count)")
        // The store loads versions without their source ANN; the new version must keep it.
        var model = base.model
        model.sourceANNTensors = try Model.loadSourceANN(in: base.directory)
        try model.validate()
        var tuner = try FineTuner(model: model, configuration: configuration(job))
        let checkpoint = queue.jobStore.checkpointDirectory(id)
        if TrainingCheckpoint.exists(at: checkpoint) {
            try tuner.resume(from: checkpoint)
            queue.emit(id, type: "message", "resumed from the checkpoint after epoch \(tuner.completedEpochs)")
        }
        var lastPersist = Date.distantPast
        try tuner.run(train: train, validation: validation, checkpointDirectory: checkpoint, cancellation: cancel) { event in
            switch event {
            case .batch(let p):
                // Progress is kept in memory per batch and persisted every two seconds.
                let now = Date()
                let persist = now.timeIntervalSince(lastPersist) > 2
                if persist { lastPersist = now }
                queue.update(id, persist: persist) { job in
                    job.progress = .init(epoch: p.epoch, totalEpochs: p.totalEpochs, step: p.step, totalSteps: p.stepsPerEpoch, fraction: p.fraction)
                    job.metrics.trainLoss = p.loss
                    job.metrics.trainAccuracy = p.accuracy
                    job.estimatedFinish = unixNow() + Int(p.secondsRemaining)
                }
            case .epochFinished(let epoch, let loss, let accuracy, let val, _):
                queue.update(id) { $0.metrics.valAccuracy = val }
                var data = ["epoch": Double(epoch), "train_loss": loss, "train_accuracy": accuracy]
                if let val { data["val_accuracy"] = val }
                let valText = val.map { String(format: "%.4f", $0) } ?? "n/a"
                queue.emit(
                    id, type: "metrics",
                    String(format: "epoch %d: loss %.4f, train accuracy %.4f, validation accuracy %@", epoch, loss, accuracy, valText),
                    data: data)
            case .message(let m):
                queue.emit(id, type: "message", m)
            }
        }
        let tuned = tuner.finishedModel(dataDescription: job.trainingData, command: "POST /v1/fine_tuning/jobs \(id)")
        return Outcome(tuned: tuned, validation: validation)
    }

    func configuration(_ job: JobRecord) -> FineTuner.Configuration {
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
        return config
    }
}
