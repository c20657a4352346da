import ArgumentParser
import Foundation
import HTTPServer
import Logging
import NativeBridge
import Serving

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve every model under --models over HTTP (REST API, web page, metrics).",
        discussion: """
            Environment: SPIKESERVE_HOST, SPIKESERVE_PORT, SPIKESERVE_MODELS, SPIKESERVE_PUBLIC, SPIKESERVE_LOG_FORMAT, \
            SPIKESERVE_ADMIN_TOKEN, SPIKESERVE_INFERENCE_TOKEN, SPIKESERVE_DATA_ROOT, SPIKESERVE_ROLE, SPIKESERVE_WORKER_URL \
            (flags win over the environment).

            Replicas: several processes may share one --models directory (a shared volume). Each notices \
            versions and default changes that others write (inotify, and a scan every --watch-interval \
            seconds) and adopts them after loading and warming them. --role inference serves only; \
            --role worker runs the jobs and publishes versions; all (the default) does both.
            """)

    @Option(help: "Address to listen on (IPv4 or IPv6 literal). Env SPIKESERVE_HOST. Default 127.0.0.1.")
    var host: String?

    @Option(help: "TCP port. Env SPIKESERVE_PORT. Default 8080.")
    var port: Int?

    @Option(help: "Directory of models (NAME/VERSION/model.json). Env SPIKESERVE_MODELS. Default Models.")
    var models: String?

    @Option(help: "Directory of static web files. Env SPIKESERVE_PUBLIC. Default Public.")
    var `public`: String?

    @Option(help: "JSON file {\"admin\": \"...\", \"inference\": \"...\"} with bearer tokens.")
    var tokens: String?

    @Option(help: "Log format: text or json. Env SPIKESERVE_LOG_FORMAT.")
    var logFormat: String?

    @Option(
        help:
            "Directory training data paths of fine-tuning jobs are relative to. Env SPIKESERVE_DATA_ROOT. Default: paths disabled (upload datasets instead)."
    )
    var dataRoot: String?

    @Option(help: "Directory for job records, checkpoints and uploaded datasets. Default MODELS/.spikeserve.")
    var stateDir: String?

    @Option(help: "Fraction of the cores a fine-tuning job may use (at least one core).")
    var trainingCoreShare = 0.5

    @Option(help: "Fine-tuning jobs trained at the same time (the rest queue).")
    var maxConcurrentJobs = 1

    @Option(help: "Image decoding threads (default: one per core).")
    var decodeThreads: Int?

    @Option(help: "Most megapixels decoding at once; past it a request is answered 503 with Retry-After.")
    var maxDecodeMegapixels = 160

    @Option(help: "Most megabytes a dataset archive may expand to (all files).")
    var datasetMaxMb = 2048

    @Option(help: "Most files in a dataset archive.")
    var datasetMaxFiles = 200_000

    @Option(help: "Most megabytes of one file in a dataset archive.")
    var datasetMaxFileMb = 64

    @Option(help: "Megabytes of free disk space extraction must leave on the state volume.")
    var diskReserveMb = 1024

    @Option(help: "Versions kept on disk per model (the default version is always kept).")
    var keepVersions = 5

    @Option(help: "Largest dynamic batch.")
    var maxBatchSize = 32

    @Option(help: "Longest wait, in milliseconds, for a batch to reach its expected size.")
    var maxQueueDelayMs = 2.0

    @Option(help: "Images a batch waits for (default: as many as the previous batch held, which follows the load).")
    var preferredBatchSize: Int?

    @Option(help: "Inference threads, each running batches on its share of the cores (default 1).")
    var inferenceWorkers: Int?

    @Option(help: "Most images queued before requests are refused with 429.")
    var maxQueuedImages = 512

    @Option(help: "inference, worker or all (one machine). Env SPIKESERVE_ROLE. Default all.")
    var role: String?

    @Option(help: "The worker's URL, named by an inference replica's answers to job requests. Env SPIKESERVE_WORKER_URL.")
    var workerURL: String?

    @Option(help: "Seconds between scans of the models directory for other processes' writes (0: do not watch).")
    var watchInterval = 1.0

    @Flag(help: "Notice other processes' writes by scanning only, without inotify (for volumes whose events do not arrive).")
    var noInotify = false

    func validate() throws {
        guard maxBatchSize >= 1 else { throw ValidationError("--max-batch-size must be at least 1") }
        try OptionRange.check(decodeThreads, 1...256, "--decode-threads")
        try OptionRange.check(maxDecodeMegapixels, 1...100_000, "--max-decode-megapixels")
        try OptionRange.check(datasetMaxMb, 1...(1 << 20), "--dataset-max-mb")
        try OptionRange.check(datasetMaxFiles, 1...100_000_000, "--dataset-max-files")
        try OptionRange.check(datasetMaxFileMb, 1...(1 << 20), "--dataset-max-file-mb")
        try OptionRange.check(diskReserveMb, 0...(1 << 30), "--disk-reserve-mb")
        guard maxQueueDelayMs >= 0, maxQueueDelayMs <= 60_000 else { throw ValidationError("--max-queue-delay-ms must be in 0...60000") }
        if let w = inferenceWorkers, !(1...256).contains(w) { throw ValidationError("--inference-workers must be in 1...256") }
        try OptionRange.check(watchInterval, 0...3600, "--watch-interval")
        if let role, ServingApplication.Role(rawValue: role) == nil {
            throw ValidationError("--role must be one of inference, worker, all")
        }
        if let p = preferredBatchSize, !(1...maxBatchSize).contains(p) {
            throw ValidationError("--preferred-batch-size must be in 1...\(maxBatchSize) (--max-batch-size)")
        }
    }

    func run() async throws { try await serve() }

    func serve() async throws {
        let env = ProcessInfo.processInfo.environment
        let format = logFormat ?? env["SPIKESERVE_LOG_FORMAT"] ?? "text"
        guard ["text", "json"].contains(format) else { throw ValidationError("--log-format must be text or json") }
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler = format == "json" ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let logger = Logger(label: "spikeserve")
        var server = Server.Configuration()
        server.host = host ?? env["SPIKESERVE_HOST"] ?? "127.0.0.1"
        server.port = port ?? env["SPIKESERVE_PORT"].flatMap(Int.init) ?? 8080
        // I/O threads follow the cores this process may use (SPIKESERVE_CORES in a container).
        server.ioThreads = min(server.ioThreads, Parallelism.machineCores)
        let modelsDir = models ?? env["SPIKESERVE_MODELS"] ?? "Models"
        let publicDir = self.public ?? env["SPIKESERVE_PUBLIC"] ?? "Public"
        var batching = InferenceScheduler.Configuration()
        batching.maxBatchSize = maxBatchSize
        batching.maxQueueDelay = .microseconds(Int(maxQueueDelayMs * 1000))
        batching.preferredBatchSize = preferredBatchSize
        if let inferenceWorkers { batching.workers = inferenceWorkers }
        batching.maxQueuedImages = maxQueuedImages
        var jobs = JobManager.Configuration(
            stateDirectory: stateDir ?? modelsDir + "/.spikeserve",
            dataRoot: dataRoot ?? env["SPIKESERVE_DATA_ROOT"])
        jobs.coreShare = trainingCoreShare
        jobs.keepVersions = keepVersions
        jobs.maxConcurrentJobs = maxConcurrentJobs
        jobs.datasetLimits.maxTotalBytes = datasetMaxMb << 20
        jobs.datasetLimits.maxFiles = datasetMaxFiles
        jobs.datasetLimits.maxFileBytes = datasetMaxFileMb << 20
        jobs.datasetLimits.reserveBytes = diskReserveMb << 20
        var decoding = DecodePool.Configuration()
        if let decodeThreads { decoding.threads = decodeThreads }
        decoding.maxPixelsInFlight = maxDecodeMegapixels * 1_000_000
        guard let role = ServingApplication.Role(rawValue: role ?? env["SPIKESERVE_ROLE"] ?? "all") else {
            throw ValidationError("SPIKESERVE_ROLE must be one of inference, worker, all")
        }
        var watch: StoreWatcher.Configuration? = nil
        if watchInterval > 0 {
            var w = StoreWatcher.Configuration()
            w.pollInterval = watchInterval
            w.useInotify = !noInotify
            watch = w
        }
        let app = try ServingApplication(
            modelsDirectory: modelsDir, publicDirectory: publicDir, tokens: AccessTokens.load(file: tokens),
            batching: batching, decoding: decoding, jobs: jobs, role: role, workerURL: workerURL ?? env["SPIKESERVE_WORKER_URL"],
            watch: watch, server: server, logger: logger)
        try await app.run()
    }
}
