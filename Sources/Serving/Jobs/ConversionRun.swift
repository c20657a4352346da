import Foundation
import Imaging
import SNN

/// One conversion of an imported ANN, on a runner thread: threshold balancing on the job's
/// calibration data (the paper's step 2), then the converted model is handed to the publisher
/// like a fine-tuned one, with the held-out part of the data to validate it on.
struct ConversionRun {
    let queue: JobQueue
    let data: TrainingData

    /// Throws `TrainingCancelled` when cancelled before the conversion starts (it then runs to
    /// its end), `JobError` when the data or the ANN is unusable.
    func run(_ job: JobRecord, cancel: JobQueue.CancelFlag) throws -> TrainingRun.Outcome {
        let id = job.id
        guard let parameters = job.conversion else { throw JobError.invalid("job \(id) has no conversion parameters") }
        queue.update(id) {
            $0.status = .validatingFiles
            $0.startedAt = $0.startedAt ?? unixNow()
        }
        queue.emit(id, type: "status", "validating files")
        let ann: Model
        let calibration: ImageSet, validation: ImageSet
        do {
            ann = try Model.load(from: queue.jobStore.importedModelDirectory(id))
            let (train, held) = try data.folder(job.trainingData).split(validationFraction: job.validationSplit, seed: job.seed)
            let spec = ann.description.inputSpec
            calibration = try ImageSet.load(train.subset(limit: parameters.calibrationImages, seed: job.seed), spec: spec)
            validation = try ImageSet.load(held, spec: spec)
            guard calibration.count > 0, validation.count > 0 else { throw JobError.invalid("calibration or validation data is empty") }
        } catch let error as JobError {
            throw error
        } catch {
            throw JobError.invalid("\(error)")
        }
        if cancel.isCancelled { throw TrainingCancelled(epoch: 0) }
        queue.update(id) { $0.status = .running }
        queue.emit(
            id, type: "status",
            "converting: thresholds balanced on \(calibration.count) images over \(parameters.calibrationTimesteps) steps, "
                + "validating on \(validation.count)")
        var configuration = Converter.Configuration()
        configuration.scale = parameters.scale
        configuration.calibrationImages = parameters.calibrationImages
        configuration.calibrationTimesteps = parameters.calibrationTimesteps
        configuration.defaultTimesteps = parameters.timesteps
        configuration.maxTimesteps = max(512, parameters.timesteps)
        configuration.initialMembrane = parameters.initialMembrane
        configuration.encoding = parameters.encoding
        configuration.seed = job.seed
        var snn = try Converter.convert(ann, calibration: calibration, configuration: configuration) { line in
            queue.emit(id, type: "message", line)
        }
        snn.description.provenance.commands.append("POST /v1/models (\(parameters.source)), conversion job \(id)")
        snn.description.provenance.data = job.trainingData
        queue.update(id) { $0.progress = .init(epoch: 1, totalEpochs: 1, step: 1, totalSteps: 1, fraction: 0.9) }
        return TrainingRun.Outcome(tuned: snn, validation: validation)
    }
}
