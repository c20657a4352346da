import Foundation
import Serving
import Testing

/// Fine-tuning jobs end to end on the MNIST fixture (SNNTests' 200 images), with a tiny model.
@Suite(.serialized) struct FineTuningJobTests {
    static let dataRoot = repositoryRoot + "/Tests/SNNTests/Fixtures"
    static let admin = ["-H", "Authorization: Bearer adm"]
    static let tokens = AccessTokens(admin: "adm", inference: nil)

    static func createJob(_ base: String, _ body: String) async throws -> CurlResult {
        try await curl(admin + ["-H", "Content-Type: application/json", "--data", body, base + "/v1/fine_tuning/jobs"])
    }

    static func waitForJob(_ base: String, _ id: String, until done: ([String: Any]) -> Bool, seconds: Double = 120) async throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let job = try await curl(admin + [base + "/v1/fine_tuning/jobs/" + id]).json
            if done(job) { return job }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw CancellationError()
    }

    static let quickJob =
        #"{"model": "tiny", "training_data": "mnist-small", "hyperparameters": {"timesteps": 2, "epochs": 1, "batch_size": 20, "limit": 60}, "force": true}"#

    @Test func jobDeploysANewVersionAndSurvivesARestart() async throws {
        let server = try await TestServer(tokens: Self.tokens, dataRoot: Self.dataRoot)
        let created = try await Self.createJob(server.base, Self.quickJob)
        #expect(created.status == 201)
        let id = try #require(created.json["id"] as? String)
        #expect(id.hasPrefix("ftjob_") && created.headers["location"] == "/v1/fine_tuning/jobs/\(id)")
        #expect(created.json["object"] as? String == "fine_tuning.job" && created.json["base_version"] as? Int == 1)
        let job = try await Self.waitForJob(server.base, id) { ["succeeded", "failed", "cancelled"].contains($0["status"] as? String) }
        #expect(job["status"] as? String == "succeeded", "job: \(job)")
        let result = job["result"] as? [String: Any] ?? [:]
        #expect(result["model_version"] as? Int == 4 && result["deployed"] as? Bool == true)
        #expect((job["progress"] as? [String: Any])?["fraction"] as? Double == 1)
        let classify = try await curl([
            "-H", "Content-Type: image/png", "--data-binary", "@" + fixture("seven.png"), server.base + "/v1/models/tiny/classify",
        ])
        #expect(classify.headers["x-model-version"] == "4")
        let events = try await curl(Self.admin + [server.base + "/v1/fine_tuning/jobs/\(id)/events?limit=100"]).json["data"] as? [[String: Any]] ?? []
        #expect(
            events.contains { $0["type"] as? String == "metrics" } && events.contains { ($0["message"] as? String)?.contains("succeeded") == true })
        // Server-Sent Events replay the log and end with "done" once the job is finished.
        let stream = try await curl(Self.admin + ["-N", server.base + "/v1/fine_tuning/jobs/\(id)/events?stream=true"])
        let text = String(decoding: stream.body, as: UTF8.self)
        #expect(stream.headers["content-type"]?.hasPrefix("text/event-stream") == true && text.contains("event: done"))
        #expect(try await curl(Self.admin + [server.base + "/v1/fine_tuning/jobs/\(id)/checkpoints"]).status == 200)
        #expect(try await curl(Self.admin + ["-X", "POST", server.base + "/v1/fine_tuning/jobs/\(id)/cancel"]).status == 409)
        await server.stop()

        // A restart keeps the job list, the new version and the default pointer.
        let again = try await TestServer(tokens: Self.tokens, models: server.models, dataRoot: Self.dataRoot)
        defer { Task { await again.stop() } }
        let list = try await curl(Self.admin + [again.base + "/v1/fine_tuning/jobs"]).json["data"] as? [[String: Any]] ?? []
        #expect(list.first?["id"] as? String == id && list.first?["status"] as? String == "succeeded")
        #expect(try await curl([again.base + "/v1/models/tiny"]).json["default_version"] as? Int == 4)
    }

    @Test func badRequestsFailFastAndQueueNothing() async throws {
        let server = try await TestServer(tokens: Self.tokens, dataRoot: Self.dataRoot)
        defer { Task { await server.stop() } }
        for body in [
            #"{"training_data": "mnist-small"}"#, #"{"model": "nope", "training_data": "mnist-small"}"#,
            #"{"model": "tiny", "training_data": "../SNNTests"}"#, #"{"model": "tiny", "training_data": "/etc"}"#,
            #"{"model": "tiny", "training_data": "missing"}"#,
            #"{"model": "tiny", "training_data": "mnist-small", "hyperparameters": {"epochs": 0}}"#,
            #"{"model": "tiny", "training_data": "ds_nothere"}"#, "not json",
        ] {
            let r = try await Self.createJob(server.base, body)
            #expect(r.status == 400, "\(body) → \(r.status)")
        }
        #expect((try await curl(Self.admin + [server.base + "/v1/fine_tuning/jobs"]).json["data"] as? [Any])?.isEmpty == true)
        #expect(try await curl([server.base + "/v1/fine_tuning/jobs"]).status == 401)
        #expect(try await curl(Self.admin + [server.base + "/v1/fine_tuning/jobs/ftjob_nope"]).status == 404)
    }

    @Test func cancelStopsARunningJobWithinABatch() async throws {
        let server = try await TestServer(tokens: Self.tokens, dataRoot: Self.dataRoot)
        defer { Task { await server.stop() } }
        let long = #"{"model": "tiny", "training_data": "mnist-small", "hyperparameters": {"timesteps": 16, "epochs": 200, "batch_size": 4}}"#
        let id = try #require(try await Self.createJob(server.base, long).json["id"] as? String)
        _ = try await Self.waitForJob(server.base, id) { $0["status"] as? String == "running" }
        let cancel = try await curl(Self.admin + ["-X", "POST", server.base + "/v1/fine_tuning/jobs/\(id)/cancel"])
        #expect(cancel.status == 200)
        let job = try await Self.waitForJob(server.base, id, until: { $0["status"] as? String == "cancelled" }, seconds: 10)
        #expect(job["finished_at"] as? Int != nil)
    }

    @Test func jobsQueueOneAtATimeUnlessConfigured() async throws {
        let long = #"{"model": "tiny", "training_data": "mnist-small", "hyperparameters": {"timesteps": 16, "epochs": 200, "batch_size": 4}}"#
        for concurrent in [1, 2] {
            let server = try await TestServer(tokens: Self.tokens, dataRoot: Self.dataRoot, concurrentJobs: concurrent)
            let a = try #require(try await Self.createJob(server.base, long).json["id"] as? String)
            let b = try #require(try await Self.createJob(server.base, long).json["id"] as? String)
            _ = try await Self.waitForJob(server.base, a) { $0["status"] as? String == "running" }
            if concurrent == 2 {
                _ = try await Self.waitForJob(server.base, b) { $0["status"] as? String == "running" }
            } else {
                try await Task.sleep(for: .milliseconds(500))
                #expect(try await curl(Self.admin + [server.base + "/v1/fine_tuning/jobs/" + b]).json["status"] as? String == "queued")
            }
            for id in [a, b] { _ = try await curl(Self.admin + ["-X", "POST", server.base + "/v1/fine_tuning/jobs/\(id)/cancel"]) }
            for id in [a, b] { _ = try await Self.waitForJob(server.base, id, until: { $0["status"] as? String == "cancelled" }, seconds: 20) }
            await server.stop()
        }
    }

    @Test func hotSwapDropsNoRequest() async throws {
        let server = try await TestServer(tokens: Self.tokens, dataRoot: Self.dataRoot)
        defer { Task { await server.stop() } }
        let id = try #require(try await Self.createJob(server.base, Self.quickJob).json["id"] as? String)
        // Classify continuously from two clients until the job has finished and the new version served.
        let results = try await withThrowingTaskGroup(of: [(Int, String)].self) { group in
            for _ in 0..<2 {
                group.addTask {
                    var seen: [(Int, String)] = []
                    let deadline = Date().addingTimeInterval(120)
                    while Date() < deadline {
                        let r = try await curl([
                            "-H", "Content-Type: image/png", "--data-binary", "@" + fixture("seven.png"), server.base + "/v1/models/tiny/classify",
                        ])
                        seen.append((r.status, r.headers["x-model-version"] ?? ""))
                        if r.headers["x-model-version"] == "4" && seen.filter({ $0.1 == "4" }).count >= 5 { break }
                    }
                    return seen
                }
            }
            var all: [[(Int, String)]] = []
            for try await r in group { all.append(r) }
            return all
        }
        _ = try await Self.waitForJob(server.base, id) { $0["status"] as? String == "succeeded" }
        for client in results {
            #expect(client.allSatisfy { $0.0 == 200 }, "every request succeeded")
            let versions = client.map(\.1)
            // Each client sees version 1 until the flip and version 4 after it, never back.
            #expect(versions.first == "1" || versions.first == "4")
            #expect(versions.drop { $0 == "1" }.allSatisfy { $0 == "4" }, "\(versions)")
            #expect(versions.last == "4")
        }
    }
}

/// Crash safety with a real process: `kill -9` during a job, restart, and the job resumes from its
/// last epoch checkpoint and finishes; the model directory never holds a half-written version.
@Suite(.serialized) struct CrashRecoveryTests {
    final class ServerProcess {
        let process = Process()
        let port: Int
        init(models: String, port: Int) throws {
            self.port = port
            let binary = repositoryRoot + "/.build/debug/spikeserve"
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["serve", "--port", String(port), "--models", models, "--data-root", FineTuningJobTests.dataRoot]
            var env = ProcessInfo.processInfo.environment
            env["SPIKESERVE_ADMIN_TOKEN"] = "adm"
            process.environment = env
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
        }
        var base: String { "http://127.0.0.1:\(port)" }
        func killHard() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        func waitReady() async throws {
            for _ in 0..<300 {
                if (try? await curl([base + "/readyz"]))?.status == 200 { return }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw CancellationError()
        }
    }

    @Test func leftoversOfInterruptedWritesAreRemovedAtStartup() async throws {
        let models = try makeModelsDirectory()
        try FileManager.default.createDirectory(atPath: models + "/tiny/.4.tmp-1234abcd", withIntermediateDirectories: true)
        try Data("{".utf8).write(to: URL(fileURLWithPath: models + "/tiny/.serving.json.tmp-5678"))
        let server = try await TestServer(models: models)
        defer { Task { await server.stop() } }
        let left = try FileManager.default.contentsOfDirectory(atPath: models + "/tiny").filter { $0.contains("tmp") }
        #expect(left.isEmpty, "\(left)")
        #expect(try await curl([server.base + "/v1/models/tiny/versions"]).json["versions"].map { ($0 as? [Any])?.count } == 3)
    }

    @Test func killNineDuringAJobThenRestartResumes() async throws {
        let binary = repositoryRoot + "/.build/debug/spikeserve"
        #expect(FileManager.default.isExecutableFile(atPath: binary), "swift build first")
        let models = try makeModelsDirectory()
        let port = Int.random(in: 20000..<60000)
        let first = try ServerProcess(models: models, port: port)
        try await first.waitReady()
        // Long enough that the kill lands between the first epoch's checkpoint and the end.
        let body =
            #"{"model": "tiny", "training_data": "mnist-small", "hyperparameters": {"timesteps": 16, "epochs": 40, "batch_size": 10, "limit": 120}, "force": true}"#
        let created = try await FineTuningJobTests.createJob(first.base, body)
        let id = try #require(created.json["id"] as? String)
        // Wait for the first epoch's checkpoint, then kill the server without warning.
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let events =
                try await curl(FineTuningJobTests.admin + [first.base + "/v1/fine_tuning/jobs/\(id)/events?limit=1000"]).json["data"]
                as? [[String: Any]] ?? []
            if events.contains(where: { $0["type"] as? String == "metrics" }) { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        first.killHard()

        let second = try ServerProcess(models: models, port: port)
        defer { second.killHard() }
        try await second.waitReady()
        let job = try await FineTuningJobTests.waitForJob(second.base, id) { ["succeeded", "failed", "cancelled"].contains($0["status"] as? String) }
        #expect(job["status"] as? String == "succeeded", "job: \(job)")
        let events =
            try await curl(FineTuningJobTests.admin + [second.base + "/v1/fine_tuning/jobs/\(id)/events?limit=1000"]).json["data"] as? [[String: Any]]
            ?? []
        let messages = events.compactMap { $0["message"] as? String }
        #expect(messages.contains { $0.contains("resumes from its last checkpoint") }, "\(messages)")
        #expect(messages.contains { $0.contains("resumed from the checkpoint after epoch") }, "\(messages)")
        let versions = try await curl([second.base + "/v1/models/tiny/versions"]).json["versions"] as? [[String: Any]] ?? []
        #expect(versions.map { $0["version"] as? Int } == [1, 2, 3, 4])
        // Only complete version directories and no leftovers of an interrupted write.
        let entries = try FileManager.default.contentsOfDirectory(atPath: models + "/tiny").filter { $0.contains("tmp") }
        #expect(entries.isEmpty, "\(entries)")
    }
}

/// `POST /v1/datasets` streams the archive to disk (a streaming route).
@Suite struct DatasetUploadTests {
    @Test func uploadTarGzOfMNISTFixture() async throws {
        let temp = FileManager.default.temporaryDirectory.appendingPathComponent("ds-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: temp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: temp) }
        let archive = temp + "/mnist-small.tar.gz"
        let tar = try await run("/usr/bin/tar", ["-czf", archive, "-C", repositoryRoot + "/Tests/SNNTests/Fixtures", "mnist-small"])
        #expect(tar.status == 0, "\(tar.output)")
        let server = try await TestServer(tokens: FineTuningJobTests.tokens)
        let response = try await curl(
            FineTuningJobTests.admin + [
                "-H", "Content-Type: application/gzip", "--data-binary", "@" + archive,
                server.base + "/v1/datasets?model=tiny",
            ])
        let unauthorized = try await curl(["--data-binary", "@" + archive, server.base + "/v1/datasets?model=tiny"])
        let empty = try await curl(FineTuningJobTests.admin + ["-X", "POST", server.base + "/v1/datasets"])
        await server.stop()
        #expect(response.status == 201, "\(String(decoding: response.body, as: UTF8.self))")
        #expect(response.json["images"] as? Int == 200)
        #expect((response.json["id"] as? String)?.hasPrefix("ds_") == true)
        #expect(unauthorized.status == 401)
        #expect(empty.status == 400)
        #expect(empty.errorCode == "invalid_archive")
    }
}
