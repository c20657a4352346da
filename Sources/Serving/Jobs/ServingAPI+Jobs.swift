import Foundation
import HTTPServer

extension ServingAPI {
    /// Fine-tuning job and dataset endpoints (admin scope). Without a job manager (an inference
    /// replica) they answer 421 naming the worker that runs jobs.
    public func registerJobs(_ manager: JobManager?, workerURL: String? = nil, on router: inout Router) {
        let need: @Sendable () throws(JobError) -> JobManager = { () throws(JobError) -> JobManager in
            guard let manager else { throw .onWorker(workerURL) }
            return manager
        }
        registerModelCreation(need, on: &router)
        let job = JSONSchema.of(JobRecord.self)
        route(
            &router, "POST", "/v1/fine_tuning/jobs", access: .admin,
            .json(
                "Start a fine-tuning job", JobRecord.self, status: 201, description: "Created",
                body: .json(JSONSchema.of(FineTuneJobRequest.self)), headers: ["Location"], errors: [413, 429, 507])
        ) { req in
            let job = try need().create(try JSONBody.decode(FineTuneJobRequest.self, from: req.body))
            var r = HTTPResponse.json(201, job)
            r.headers.set("Location", "/v1/fine_tuning/jobs/\(job.id)")
            return r
        }
        route(
            &router, "GET", "/v1/fine_tuning/jobs", access: .admin,
            .json(
                "List fine-tuning jobs", JobList.self, description: "Jobs, newest first",
                query: [
                    .init("status", JSONSchema.of(JobRecord.Status.self)), .init("limit", ["type": "integer", "minimum": 1]),
                    .init("after", ["type": "string"], "The last job id of the previous page"),
                ])
        ) { req in
            var status: JobRecord.Status? = nil
            if let s = req.query["status"] {
                guard let parsed = JobRecord.Status(rawValue: s) else { throw RequestError.invalidParameter("unknown status '\(s)'") }
                status = parsed
            }
            let limit = try queryInteger(req.query["limit"], "limit", min: 1) ?? 20
            let page = try need().list(status: status, limit: limit + 1, after: req.query["after"])
            return .json(200, JobList(data: Array(page.prefix(limit)), hasMore: page.count > limit))
        }
        route(&router, "GET", "/v1/fine_tuning/jobs/{id}", access: .admin, APIOperation(summary: "A fine-tuning job", content: .json(job))) {
            req in
            let id = req.pathParameters["id"] ?? ""
            guard let job = try need().job(id) else { throw JobError.unknownJob(id) }
            return .json(200, job)
        }
        route(
            &router, "POST", "/v1/fine_tuning/jobs/{id}/cancel", access: .admin,
            APIOperation(summary: "Cancel a job (takes effect within one batch)", content: .json(job), errors: [409])
        ) { req in
            .json(200, try need().cancel(req.pathParameters["id"] ?? ""))
        }
        route(
            &router, "POST", "/v1/fine_tuning/jobs/{id}/resume", access: .admin,
            APIOperation(summary: "Resume a failed, resumable job from its checkpoint", content: .json(job), errors: [409])
        ) { req in
            .json(200, try need().resume(req.pathParameters["id"] ?? ""))
        }
        route(&router, "GET", "/v1/fine_tuning/jobs/{id}/checkpoints", access: .admin, .json("A job's checkpoints", CheckpointList.self)) {
            req in
            let id = req.pathParameters["id"] ?? ""
            let jobs = try need()
            guard jobs.job(id) != nil else { throw JobError.unknownJob(id) }
            return .json(200, CheckpointList(data: jobs.checkpoints(id)))
        }
        route(
            &router, "GET", "/v1/fine_tuning/jobs/{id}/events", access: .admin,
            APIOperation(
                summary: "A job's events; with stream=true, Server-Sent Events until the job ends",
                query: [
                    .init("after", ["type": "integer", "minimum": 0]), .init("limit", ["type": "integer", "minimum": 1]),
                    .init("stream", ["type": "boolean"]),
                ], content: .jsonOrEventStream(JSONSchema.of(EventList.self)), description: "Events")
        ) { req in
            let id = req.pathParameters["id"] ?? ""
            let jobs = try need()
            guard jobs.job(id) != nil else { throw JobError.unknownJob(id) }
            let after = try queryInteger(req.query["after"], "after", min: 0) ?? 0
            let limit = try queryInteger(req.query["limit"], "limit", min: 1) ?? 100
            guard req.query["stream"] == "true" else {
                let events = jobs.events(id, after: after, limit: limit)
                return .json(200, EventList(data: events, hasMore: jobs.events(id, after: events.last?.id ?? after, limit: 1).count > 0))
            }
            // Server-Sent Events until the job ends: every event as it is recorded, then "done".
            return .serverSentEvents { writer in
                var cursor = after
                let encoder = HTTPResponse.stableJSONEncoder()
                while true {
                    let batch = jobs.events(id, after: cursor, limit: 1000)
                    for e in batch {
                        try await writer.writeEvent(id: String(e.id), event: e.type, data: String(decoding: try encoder.encode(e), as: UTF8.self))
                        cursor = e.id
                    }
                    if let job = jobs.job(id), job.status.isTerminal, jobs.events(id, after: cursor, limit: 1).isEmpty {
                        try await writer.writeEvent(event: "done", data: String(decoding: try encoder.encode(job), as: UTF8.self))
                        return
                    }
                    try await Task.sleep(for: .milliseconds(250))
                }
            }
        }
        // Streaming: the archive goes to disk as it arrives (up to 1 GiB, beyond the server's
        // buffered body limit); auth and the model are checked before any of it is read.
        route(
            &router, "POST", "/v1/datasets", access: .admin, maxBodyBytes: 1 << 30,
            .json(
                "Upload an ImageFolder as .tar or .tar.gz", DatasetInfo.self, status: 201, description: "Dataset",
                body: .binary("A tar or tar.gz archive (any Content-Type; the format is read from the bytes)"),
                query: [.init("model", ["type": "string"], "Check the classes against this model's labels")], errors: [413, 507])
        ) { [self] req in
            let jobs = try need()
            var model: ModelStore.Version? = nil
            if let name = req.query["model"] {
                do { model = try store.resolve(name) } catch { throw JobError.invalidModel("\(error)") }
            }
            let state = jobs.configuration.stateDirectory
            let limits = jobs.configuration.datasetLimits
            let target = model
            let info: DatasetInfo
            if let stream = req.bodyStream {
                let (id, archive, bytes) = try await Datasets.receive(stream, stateDirectory: state)
                // Extraction and decoding are slow: off the cooperative pool.
                info = try await withCheckedThrowingContinuation { c in
                    DispatchQueue.global().async {
                        c.resume(
                            with: Result { () throws(DatasetError) in
                                try Datasets.ingest(archive: archive, id: id, bytes: bytes, stateDirectory: state, model: target, limits: limits)
                            })
                    }
                }
            } else {
                let body = req.body
                info = try await withCheckedThrowingContinuation { c in
                    DispatchQueue.global().async {
                        c.resume(
                            with: Result { () throws(DatasetError) in
                                try Datasets.upload(body, stateDirectory: state, model: target, limits: limits)
                            })
                    }
                }
            }
            return .json(201, info)
        }
    }
}
