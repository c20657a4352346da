import Foundation
import HTTPServer
import SNN

extension ServingAPI {
    /// `POST /v1/models` (admin): an ONNX file or a safetensors state dict as the body, the rest in
    /// the query. Streaming (up to 1 GiB): the name and the calibration data are checked before the
    /// body is read; the file goes to disk as it arrives, is imported off the cooperative pool, and
    /// a conversion job is queued. A bad file is a 400 naming the node or tensor; nothing is kept.
    func registerModelCreation(_ need: @escaping @Sendable () throws(JobError) -> JobManager, on router: inout Router) {
        route(
            &router, "POST", "/v1/models", access: .admin, maxBodyBytes: 1 << 30,
            .json(
                "Create a model from an ANN trained elsewhere: queues a conversion job (then, optionally, fine-tuning)",
                JobRecord.self, status: 202, description: "The conversion job",
                body: .binary("An ONNX model (opsets 11–21), or a PyTorch state dict as safetensors (with arch)"),
                query: ModelCreationRequest.queryParameters.map { .init($0.name, $0.schema, $0.description) }, headers: ["Location"],
                errors: [409, 413, 507])
        ) { req in
            let jobs = try need()
            let request = try ModelCreationRequest(query: req.query)
            let classes = try jobs.validateCreation(request)
            let file = jobs.configuration.stateDirectory + "/uploads/model-\(UUID().uuidString.prefix(12))"
            // Refuse before reading when the upload (as announced) would eat into the reserve.
            let free = (try? FileManager.default.attributesOfFileSystem(forPath: jobs.configuration.stateDirectory))?[.systemFreeSize] as? Int
            let announced = req.headers["content-length"].flatMap(Int.init) ?? 0
            if let free, free - announced < jobs.configuration.datasetLimits.reserveBytes {
                throw DatasetError.noSpace(
                    "\(free >> 20) MiB free; the upload would leave less than the reserved \(jobs.configuration.datasetLimits.reserveBytes >> 20) MiB"
                )
            }
            let bytes: Int
            if let stream = req.bodyStream {
                bytes = try await receiveUpload(stream, to: file).bytes
            } else {
                do {
                    try FileManager.default.createDirectory(
                        atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                    try writeDurably(Data(req.body), to: URL(fileURLWithPath: file))
                } catch {
                    throw JobError.storage("cannot store the upload: \(error)")
                }
                bytes = req.body.count
            }
            guard bytes > 0 else {
                try? FileManager.default.removeItem(atPath: file)
                throw RequestError.badRequest("empty body: send the model file (--data-binary @model.onnx)")
            }
            let job = try await withCheckedThrowingContinuation { c in
                DispatchQueue.global().async {
                    c.resume(with: Result { () throws(JobError) in try jobs.createModel(request, file: file, dataClasses: classes) })
                }
            }
            var r = HTTPResponse.json(202, job)
            r.headers.set("Location", "/v1/fine_tuning/jobs/\(job.id)")
            return r
        }
    }
}
