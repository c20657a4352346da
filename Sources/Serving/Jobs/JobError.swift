import ModelImport

/// Why a job command was refused.
public enum JobError: Error, Sendable {
    /// The request names something that cannot be trained (messages say what and why).
    case invalid(String)
    /// The model to fine-tune does not exist or does not load.
    case invalidModel(String)
    case unknownJob(String)
    case notCancellable(String, JobRecord.Status)
    case notResumable(String, JobRecord.Status)
    /// `maxQueuedJobs` jobs are waiting already.
    case queueFull(limit: Int)
    /// The job record could not be persisted.
    case storage(String)
    case dataset(DatasetError)
    /// `POST /v1/models` names a model that exists or is being created.
    case modelExists(String)
    /// The uploaded ANN could not be imported (the error names the node or tensor).
    case importFailed(ImportError)
    /// This replica serves inference only (`--role inference`); jobs run on the worker at this URL.
    case onWorker(String?)
}
