import Foundation
import Serving
import Testing

@Suite(.serialized) struct ServingAPITests {
    @Test func healthReadinessModelsAndVersions() async throws {
        let server = try await TestServer()
        defer { Task { await server.stop() } }
        #expect(try await curl([server.base + "/healthz"]).status == 200)
        let ready = try await curl([server.base + "/readyz"])
        #expect(ready.status == 200)
        #expect((ready.json["models"] as? [String: String])?["tiny"] == "ready")
        let list = try await curl([server.base + "/v1/models"])
        #expect(list.status == 200)
        let models = list.json["models"] as? [[String: Any]] ?? []
        #expect(models.first?["name"] as? String == "tiny" && models.first?["default_version"] as? Int == 1)
        let detail = try await curl([server.base + "/v1/models/tiny"]).json
        #expect(detail["max_timesteps"] as? Int == 64 && detail["default_timesteps"] as? Int == 4)
        #expect((detail["labels"] as? [String])?.count == 10)
        #expect((detail["thresholds"] as? [Double]) == [0.5])
        let versions = try await curl([server.base + "/v1/models/tiny/versions"]).json["versions"] as? [[String: Any]] ?? []
        #expect(versions.map { $0["state"] as? String } == ["ready", "ready", "failed"])
        #expect(try await curl([server.base + "/v1/models/nope"]).status == 404)
        #expect(try await curl([server.base + "/v1/models/nope/versions"]).status == 404)
        let openapi = try await curl([server.base + "/openapi.json"])
        #expect(openapi.status == 200 && (openapi.json["paths"] as? [String: Any])?.count == 17)
    }

    @Test func classifyEveryBodyForm() async throws {
        let server = try await TestServer()
        defer { Task { await server.stop() } }
        let url = server.base + "/v1/models/tiny/classify?seed=7&top_k=3"
        let raw = try await curl(["--data-binary", "@" + fixture("seven.png"), "-H", "Content-Type: image/png", url])
        #expect(raw.status == 200)
        #expect(raw.headers["x-model-version"] == "1" && raw.headers["x-request-id"] != nil)
        let results = raw.json["results"] as? [[String: Any]] ?? []
        #expect(results.count == 1)
        let predictions = results.first?["predictions"] as? [[String: Any]] ?? []
        #expect(predictions.count == 3)
        #expect(results.first?["timesteps_used"] as? Int == 4)
        #expect(results.first?["spike_count"] != nil && results.first?["synaptic_ops"] != nil)
        #expect(raw.json["model"] as? String == "tiny" && raw.json["model_version"] as? Int == 1 && raw.json["timesteps"] as? Int == 4)

        let jpeg = try await curl(["--data-binary", "@" + fixture("seven.jpg"), "-H", "Content-Type: image/jpeg", url + "&timesteps=8&trace=true"])
        #expect(jpeg.status == 200)
        let trace = (jpeg.json["results"] as? [[String: Any]])?.first?["trace"] as? [[String: Any]] ?? []
        #expect(trace.count == 8)

        let multipart = try await curl(["-F", "image=@" + fixture("seven.png"), "-F", "image=@" + fixture("two.png"), "-F", "timesteps=6", url])
        #expect(multipart.status == 200)
        #expect((multipart.json["results"] as? [Any])?.count == 2 && multipart.json["timesteps"] as? Int == 6)

        let b64 = try Data(contentsOf: URL(fileURLWithPath: fixture("two.png"))).base64EncodedString()
        let json = try await curl([
            "-H", "Content-Type: application/json", "--data", #"{"images": [{"b64": "\#(b64)"}], "timesteps": 5, "seed": 1, "trace": true}"#,
            server.base + "/v1/models/tiny/classify",
        ])
        #expect(json.status == 200 && json.json["timesteps"] as? Int == 5 && json.json["seed"] as? String == "1")
        #expect(((json.json["results"] as? [[String: Any]])?.first?["trace"] as? [Any])?.count == 5)

        // The same seed reproduces the same scores; a specific version is addressable.
        let again = try await curl(["--data-binary", "@" + fixture("seven.png"), "-H", "Content-Type: image/png", url])
        let scores = { (r: CurlResult) in
            ((r.json["results"] as? [[String: Any]])?.first?["predictions"] as? [[String: Any]])?.map { $0["score"] as? Double }
        }
        #expect(scores(again) == scores(raw))
        let v2 = try await curl([
            "--data-binary", "@" + fixture("seven.png"), "-H", "Content-Type: image/png",
            server.base + "/v1/models/tiny/versions/2/classify",
        ])
        #expect(v2.status == 200 && v2.headers["x-model-version"] == "2")
    }

    /// Adaptive steps over the API: each image reports the steps it ran and why it stopped; a policy
    /// that never holds runs the budget and answers as the fixed budget does.
    @Test func adaptiveTimestepsReportStepsUsed() async throws {
        let server = try await TestServer()
        defer { Task { await server.stop() } }
        let url = server.base + "/v1/models/tiny/classify"
        let png = ["-H", "Content-Type: image/png", "--data-binary", "@" + fixture("seven.png")]
        func first(_ r: CurlResult) -> [String: Any] { (r.json["results"] as? [[String: Any]])?.first ?? [:] }
        let fixed = try await curl(png + [url + "?timesteps=32&seed=3"])
        let never = try await curl(png + [url + "?timesteps=32&seed=3&exit_threshold=2"])
        #expect(first(never)["timesteps_used"] as? Int == 32 && first(never)["exit"] as? String == "budget")
        #expect(first(fixed)["exit"] as? String == "budget")
        // Equal up to the rounding of a GEMM over fewer frames at a time.
        let scores = { (r: CurlResult) in (first(r)["predictions"] as? [[String: Any]])?.compactMap { $0["score"] as? Double } ?? [] }
        #expect(scores(never).count == 5 && zip(scores(never), scores(fixed)).allSatisfy { abs($0 - $1) < 1e-5 })
        let eager = try await curl(png + [url + "?timesteps=32&seed=3&adaptive=true&exit_threshold=0"])
        let used = first(eager)["timesteps_used"] as? Int ?? 0
        #expect(eager.status == 200 && used >= 1 && used <= 32)
        #expect(first(eager)["exit"] as? String == (used < 32 ? "settled" : "budget"))
        let json = try await curl([
            "-H", "Content-Type: application/json", "--data",
            #"{"images": [{"b64": "\#(try Data(contentsOf: URL(fileURLWithPath: fixture("seven.png"))).base64EncodedString())"}], "timesteps": 32, "seed": 3, "exit_threshold": 0}"#,
            url,
        ])
        #expect(first(json)["timesteps_used"] as? Int == used)
        // Without a calibrated policy, adaptive needs a threshold.
        let uncalibrated = try await curl(png + [url + "?adaptive=true"])
        #expect(uncalibrated.status == 400 && uncalibrated.errorCode == "invalid_parameter")
        let metrics = String(decoding: try await curl([server.base + "/metrics"]).body, as: UTF8.self)
        #expect(metrics.contains("spikeserve_timesteps_used") && metrics.contains("spikeserve_exits_total"))
    }

    @Test func errorsHaveTheDocumentedStatusAndShape() async throws {
        let server = try await TestServer()
        defer { Task { await server.stop() } }
        let url = server.base + "/v1/models/tiny/classify"
        let png = ["-H", "Content-Type: image/png", "--data-binary", "@" + fixture("seven.png")]
        let garbage = try await curl(["-H", "Content-Type: image/png", "--data-binary", "not an image", url])
        #expect(garbage.status == 400 && garbage.errorCode == "invalid_image")
        let truncated = try await curl(["-H", "Content-Type: image/jpeg", "--data-binary", "@" + fixture("seven.jpg"), "--range", "0-100", url])
        #expect([200, 400].contains(truncated.status))
        let badT = try await curl(png + [url + "?timesteps=abc"])
        #expect(badT.status == 400 && badT.errorCode == "invalid_parameter")
        #expect(String(decoding: badT.body, as: UTF8.self).contains("timesteps"))
        let overMax = try await curl(png + [url + "?timesteps=65"])
        #expect(overMax.status == 400 && String(decoding: overMax.body, as: UTF8.self).contains("maximum of 64"))
        #expect(try await curl(png + [url + "?top_k=0"]).status == 400)
        #expect(try await curl(png + [url + "?trace=maybe"]).status == 400)
        let unsupported = try await curl(["-H", "Content-Type: text/plain", "--data", "hello", url])
        #expect(unsupported.status == 415 && unsupported.errorCode == "unsupported_media_type")
        #expect(try await curl(png + [server.base + "/v1/models/nope/classify"]).status == 404)
        #expect(try await curl(png + [server.base + "/v1/models/tiny/versions/9/classify"]).status == 404)
        #expect(try await curl(png + [server.base + "/v1/models/tiny/versions/3/classify"]).status == 503)
        let method = try await curl([url])
        #expect(method.status == 405 && method.headers["allow"]?.contains("POST") == true)
        let emptyJSON = try await curl(["-H", "Content-Type: application/json", "--data", "{}", url])
        #expect(emptyJSON.status == 400)
        // A lone request waits up to the 2 ms batching delay, so a 1 ms deadline always expires.
        let deadline = try await curl(png + [url + "?timesteps=64&deadline_ms=1"])
        #expect(deadline.status == 504 && deadline.errorCode == "deadline_exceeded")
        // More images than one request may carry: 413 stating the limit.
        let many = (0..<65).flatMap { _ in ["-F", "image=@" + fixture("two.png")] }
        let tooMany = try await curl(many + [url])
        #expect(tooMany.status == 413 && String(decoding: tooMany.body, as: UTF8.self).contains("limit is 64"))
        // A bad upload does not affect the next request.
        #expect(try await curl(png + [url]).status == 200)
    }

    @Test func queueLimitAnswers429WithRetryAfter() async throws {
        var batching = InferenceScheduler.Configuration()
        batching.maxQueuedImages = 1
        batching.maxBatchSize = 1
        let server = try await TestServer(batching: batching)
        defer { Task { await server.stop() } }
        let url = server.base + "/v1/models/tiny/classify?timesteps=64"
        let statuses = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
            for _ in 0..<24 {
                group.addTask {
                    let r = try await curl(["-H", "Content-Type: image/png", "--data-binary", "@" + fixture("seven.png"), url])
                    return (r.status, r.headers["retry-after"])
                }
            }
            var all: [(Int, String?)] = []
            for try await s in group { all.append(s) }
            return all
        }
        #expect(statuses.contains { $0.0 == 200 })
        let refused = statuses.filter { $0.0 == 429 }
        #expect(!refused.isEmpty && refused.allSatisfy { $0.1 == "1" })
    }

    /// A phone photo stored sideways (the seven rotated 90° counter-clockwise, EXIF Orientation 6)
    /// is classified as a viewer shows it, by the shipped model.
    @Test func exifOrientationIsAppliedBeforeClassifying() async throws {
        let models = FileManager.default.temporaryDirectory.appendingPathComponent("models-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: models, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: repositoryRoot + "/Models/mnist-cnn", toPath: models + "/mnist-cnn")
        let server = try await TestServer(models: models)
        defer { Task { await server.stop() } }
        let r = try await curl([
            "-H", "Content-Type: image/jpeg", "--data-binary", "@" + fixture("seven-exif6.jpg"),
            server.base + "/v1/models/mnist-cnn/classify?timesteps=8",
        ])
        #expect(r.status == 200)
        let top = ((r.json["results"] as? [[String: Any]])?.first?["predictions"] as? [[String: Any]])?.first
        #expect(top?["label"] as? String == "7", "\(String(decoding: r.body, as: UTF8.self))")
    }

    /// At T = 1 the output layer of the shipped version 2 (membranes from 0) receives nothing: every
    /// potential is 0, so the answer says it decided nothing instead of claiming class 0; at T = 8 it
    /// decides.
    @Test func equalOutputPotentialsAreUndecided() async throws {
        let models = FileManager.default.temporaryDirectory.appendingPathComponent("models-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: models, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: repositoryRoot + "/Models/mnist-cnn", toPath: models + "/mnist-cnn")
        let server = try await TestServer(models: models)
        defer { Task { await server.stop() } }
        for (t, decided) in [(1, false), (8, true)] {
            let r = try await curl([
                "-H", "Content-Type: image/png", "--data-binary", "@" + fixture("seven.png"),
                server.base + "/v1/models/mnist-cnn/versions/2/classify?timesteps=\(t)",
            ])
            #expect(r.status == 200)
            let result = (r.json["results"] as? [[String: Any]])?.first
            #expect(result?["decided"] as? Bool == decided)
            #expect((result?["predictions"] as? [Any])?.isEmpty == !decided)
        }
        // The trace says the same per step: no label before anything reached the output.
        let traced = try await curl([
            "-H", "Content-Type: image/png", "--data-binary", "@" + fixture("seven.png"),
            server.base + "/v1/models/mnist-cnn/versions/2/classify?timesteps=8&trace=true",
        ])
        let steps = try #require(((traced.json["results"] as? [[String: Any]])?.first?["trace"] as? [[String: Any]]))
        #expect(steps.first?["decided"] as? Bool == false && steps.first?["label"] == nil)
        #expect(steps.last?["decided"] as? Bool == true && steps.last?["label"] as? String == "7")
    }

    /// A failed version never wedges its model: with the pinned default broken, the model reports
    /// it (readiness names the version) while another model keeps the server ready; pinning a good
    /// version makes the model serve at once. With only broken models the server is not ready.
    @Test func brokenDefaultVersionDoesNotWedgeTheModel() async throws {
        let models = try makeModelsDirectory()
        try tinyModel(seed: 5, name: "other").save(to: models + "/other/1")
        try Data(#"{"default_version": 3}"#.utf8).write(to: URL(fileURLWithPath: models + "/tiny/serving.json"))
        let server = try await TestServer(tokens: AccessTokens(admin: "secret"), models: models)
        defer { Task { await server.stop() } }
        let png = ["-H", "Content-Type: image/png", "--data-binary", "@" + fixture("seven.png")]
        var ready = try await curl([server.base + "/readyz"])
        #expect(ready.status == 200)
        #expect((ready.json["models"] as? [String: String]) == ["other": "ready", "tiny": "failed"])
        #expect(((ready.json["problems"] as? [String: String])?["tiny"] ?? "").contains("default version 3 failed to load"))
        #expect(try await curl(png + [server.base + "/v1/models/tiny/classify"]).status == 503)
        #expect(try await curl(png + [server.base + "/v1/models/other/classify"]).status == 200)

        let pin = try await curl([
            "-X", "PUT", "-H", "Authorization: Bearer secret", "-H", "Content-Type: application/json",
            "-d", #"{"version": 2}"#, server.base + "/v1/models/tiny/default",
        ])
        #expect(pin.status == 200)
        #expect(try await curl(png + [server.base + "/v1/models/tiny/classify"]).status == 200)
        ready = try await curl([server.base + "/readyz"])
        #expect((ready.json["models"] as? [String: String]) == ["other": "ready", "tiny": "ready"])
        #expect(ready.json["problems"] == nil)
    }

    @Test func onlyBrokenModelsMeanNotReady() async throws {
        let models = try makeModelsDirectory()
        try Data(#"{"default_version": 3}"#.utf8).write(to: URL(fileURLWithPath: models + "/tiny/serving.json"))
        let server = try await TestServer(models: models)
        defer { Task { await server.stop() } }
        let ready = try await curl([server.base + "/readyz"])
        #expect(ready.status == 503)
        #expect((ready.json["models"] as? [String: String])?["tiny"] == "failed")
    }

    /// A lone request never waits for company: with an hour-long queue delay it still completes,
    /// because the previous batch (none yet, then this one) held a single image.
    @Test func loneRequestStartsAtOnce() async throws {
        var batching = InferenceScheduler.Configuration()
        batching.maxQueueDelay = .seconds(3600)
        let server = try await TestServer(batching: batching)
        defer { Task { await server.stop() } }
        for _ in 0..<3 {
            let r = try await curl([
                "--max-time", "60", "-H", "Content-Type: image/png", "--data-binary", "@" + fixture("seven.png"),
                server.base + "/v1/models/tiny/classify",
            ])
            #expect(r.status == 200)
        }
    }

    @Test func concurrentRequestsAreBatched() async throws {
        var batching = InferenceScheduler.Configuration()
        batching.maxQueueDelay = .milliseconds(50)
        batching.preferredBatchSize = 8
        let server = try await TestServer(batching: batching)
        defer { Task { await server.stop() } }
        let url = server.base + "/v1/models/tiny/classify"
        let sizes = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    let r = try await curl(["-H", "Content-Type: image/png", "--data-binary", "@" + fixture("seven.png"), url])
                    return ((r.json["results"] as? [[String: Any]])?.first?["timings_ms"] as? [String: Any])?["batch_size"] as? Int ?? 0
                }
            }
            var all: [Int] = []
            for try await s in group { all.append(s) }
            return all
        }
        #expect(sizes.max()! > 1, "batch sizes \(sizes)")
        let metrics = String(decoding: try await curl([server.base + "/metrics"]).body, as: UTF8.self)
        #expect(metrics.contains("spikeserve_requests_total"))
        #expect(metrics.contains("spikeserve_batch_size"))
        #expect(metrics.contains("spikeserve_model_version_loaded"))
    }

    @Test func authScopes() async throws {
        // No admin token configured: admin endpoints are disabled and say how to enable them.
        let open = try await TestServer()
        let disabled = try await curl([
            "-X", "PUT", "-H", "Content-Type: application/json", "--data", #"{"version": 2}"#,
            open.base + "/v1/models/tiny/default",
        ])
        #expect(disabled.status == 403 && String(decoding: disabled.body, as: UTF8.self).contains("SPIKESERVE_ADMIN_TOKEN"))
        await open.stop()

        let server = try await TestServer(tokens: AccessTokens(admin: "adm-secret", inference: "inf-secret"))
        defer { Task { await server.stop() } }
        let classify = ["-H", "Content-Type: image/png", "--data-binary", "@" + fixture("seven.png"), server.base + "/v1/models/tiny/classify"]
        let missing = try await curl(classify)
        #expect(missing.status == 401 && missing.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
        #expect(try await curl(["-H", "Authorization: Bearer wrong"] + classify).status == 401)
        #expect(try await curl(["-H", "Authorization: Bearer inf-secret"] + classify).status == 200)
        #expect(try await curl(["-H", "Authorization: Bearer adm-secret"] + classify).status == 200)
        let put = ["-X", "PUT", "-H", "Content-Type: application/json", server.base + "/v1/models/tiny/default"]
        #expect(try await curl(["-H", "Authorization: Bearer inf-secret", "--data", #"{"version": 2}"#] + put).status == 403)
        #expect(try await curl(["--data", #"{"version": 2}"#] + put).status == 401)
        let unknown = try await curl(["-H", "Authorization: Bearer adm-secret", "--data", #"{"version": 9}"#] + put)
        #expect(unknown.status == 409)
        #expect(try await curl(["-H", "Authorization: Bearer adm-secret", "--data", #"{"version": 3}"#] + put).status == 409)
        #expect(try await curl(["-H", "Authorization: Bearer adm-secret", "--data", #"{"v": 3}"#] + put).status == 400)
        let ok = try await curl(["-H", "Authorization: Bearer adm-secret", "--data", #"{"version": 2}"#] + put)
        #expect(ok.status == 200 && ok.json["default_version"] as? Int == 2)
        let after = try await curl(["-H", "Authorization: Bearer inf-secret"] + classify)
        #expect(after.headers["x-model-version"] == "2")
        // The pointer is persisted for the next start.
        let pointer = try String(contentsOfFile: server.models + "/tiny/serving.json", encoding: .utf8)
        #expect(pointer.contains("2"))
        // Health, readiness and metrics stay open.
        #expect(try await curl([server.base + "/healthz"]).status == 200)
        #expect(try await curl([server.base + "/metrics"]).status == 200)
    }
}

@Suite(.serialized) struct StrictJSONTests {
    /// JSON booleans must not pass for numbers (NSNumber converts `true` to 1) and vice versa.
    @Test func booleansAndNumbersAreNotInterchangeable() async throws {
        let server = try await TestServer(tokens: AccessTokens(admin: "adm", inference: nil))
        defer { Task { await server.stop() } }
        let put = ["-X", "PUT", "-H", "Authorization: Bearer adm", "-H", "Content-Type: application/json", server.base + "/v1/models/tiny/default"]
        #expect(try await curl(put + ["--data", #"{"version": true}"#]).status == 400)
        #expect(try await curl(put + ["--data", #"{"version": "2"}"#]).status == 400)
        #expect(try await curl(put + ["--data", #"{"version": 0}"#]).status == 400)
        let b64 = try Data(contentsOf: URL(fileURLWithPath: fixture("two.png"))).base64EncodedString()
        let classify = ["-H", "Content-Type: application/json", server.base + "/v1/models/tiny/classify"]
        #expect(try await curl(classify + ["--data", #"{"images": [{"b64": "\#(b64)"}], "seed": true}"#]).status == 400)
        #expect(try await curl(classify + ["--data", #"{"images": [{"b64": "\#(b64)"}], "trace": 1}"#]).status == 400)
        #expect(try await curl(classify + ["--data", #"{"images": [{"b64": "\#(b64)"}], "timesteps": "4"}"#]).status == 400)
        #expect(try await curl(classify + ["--data", #"{"images": [{"b64": "\#(b64)"}], "seed": 1, "trace": false}"#]).status == 200)
    }
}
