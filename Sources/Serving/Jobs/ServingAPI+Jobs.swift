import Foundation
import HTTPServer

extension ServingAPI {
    /// Fine-tuning job and dataset endpoints (admin scope).
    public func registerJobs(_ jobs: JobManager, on router: inout Router) {
        route(&router, "POST", "/v1/fine_tuning/jobs", access: .admin) { req in
            let job = try jobs.create(try JSONValue.parseObject(req.body))
            var r = HTTPResponse.json(201, job)
            r.headers.set("Location", "/v1/fine_tuning/jobs/\(job.id)")
            return r
        }
        route(&router, "GET", "/v1/fine_tuning/jobs", access: .admin) { req in
            var status: JobRecord.Status? = nil
            if let s = req.query["status"] {
                guard let parsed = JobRecord.Status(rawValue: s) else {
                    throw APIError.badRequest("unknown status '\(s)'", code: "invalid_parameter")
                }
                status = parsed
            }
            let limit = try ClassifyRequest.integer(req.query["limit"], "limit", min: 1) ?? 20
            let page = jobs.list(status: status, limit: limit + 1, after: req.query["after"])
            return .json(200, JobList(data: Array(page.prefix(limit)), hasMore: page.count > limit))
        }
        route(&router, "GET", "/v1/fine_tuning/jobs/{id}", access: .admin) { req in
            guard let job = jobs.job(req.pathParameters["id"] ?? "") else {
                throw APIError.notFound("job \(req.pathParameters["id"] ?? "") does not exist")
            }
            return .json(200, job)
        }
        route(&router, "POST", "/v1/fine_tuning/jobs/{id}/cancel", access: .admin) { req in
            .json(200, try jobs.cancel(req.pathParameters["id"] ?? ""))
        }
        route(&router, "POST", "/v1/fine_tuning/jobs/{id}/resume", access: .admin) { req in
            .json(200, try jobs.resume(req.pathParameters["id"] ?? ""))
        }
        route(&router, "GET", "/v1/fine_tuning/jobs/{id}/checkpoints", access: .admin) { req in
            let id = req.pathParameters["id"] ?? ""
            guard jobs.job(id) != nil else { throw APIError.notFound("job \(id) does not exist") }
            return .json(
                200,
                [
                    "object": "list",
                    "data": .array(jobs.checkpoints(id).map { c in .object(c.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }) }),
                ] as JSONValue)
        }
        route(&router, "GET", "/v1/fine_tuning/jobs/{id}/events", access: .admin) { req in
            let id = req.pathParameters["id"] ?? ""
            guard jobs.job(id) != nil else { throw APIError.notFound("job \(id) does not exist") }
            let after = try ClassifyRequest.integer(req.query["after"], "after", min: 0) ?? 0
            let limit = try ClassifyRequest.integer(req.query["limit"], "limit", min: 1) ?? 100
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
        route(&router, "POST", "/v1/datasets", access: .admin, maxBodyBytes: 1 << 30) { [self] req in
            var model: ModelStore.Version? = nil
            if let name = req.query["model"] {
                do { model = try store.resolve(name) } catch { throw APIError.badRequest("\(error)", code: "invalid_model") }
            }
            let state = jobs.configuration.stateDirectory
            let limits = jobs.configuration.datasetLimits
            let target = model
            let result: [String: JSONValue]
            if let stream = req.bodyStream {
                let (id, archive, bytes) = try await Datasets.receive(stream, stateDirectory: state)
                // Extraction and decoding are slow: off the cooperative pool.
                result = try await withCheckedThrowingContinuation { c in
                    DispatchQueue.global().async {
                        c.resume(
                            with: Result { () throws(APIError) in
                                try Datasets.ingest(archive: archive, id: id, bytes: bytes, stateDirectory: state, model: target, limits: limits)
                            })
                    }
                }
            } else {
                let body = req.body
                result = try await withCheckedThrowingContinuation { c in
                    DispatchQueue.global().async {
                        c.resume(
                            with: Result { () throws(APIError) in try Datasets.upload(body, stateDirectory: state, model: target, limits: limits) })
                    }
                }
            }
            return .json(201, JSONValue.object(result.sorted { $0.key < $1.key }))
        }
    }
}

struct JobList: Encodable {
    var object = "list"
    var data: [JobRecord]
    var hasMore: Bool
    enum CodingKeys: String, CodingKey { case object, data, hasMore = "has_more" }
}

struct EventList: Encodable {
    var object = "list"
    var data: [JobEvent]
    var hasMore: Bool
    enum CodingKeys: String, CodingKey { case object, data, hasMore = "has_more" }
}
