import Foundation
import Logging
import Serving
import Synchronization
import Testing

/// Scale-out on one machine: three `spikeserve serve` processes on loopback share one models
/// directory — two inference replicas and a worker. A fine-tuning job runs on the worker while a
/// client keeps classifying on both replicas: no request fails, and both serve the new version
/// within 5 s of its publication.
@Suite(.serialized) struct ReplicaTests {
    /// A server process and the port it bound.
    final class ServerProcess: Sendable {
        let process: Process
        let port: Int
        var base: String { "http://127.0.0.1:\(port)" }

        init(role: String, models: String, extra: [String] = []) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: repositoryRoot + "/.build/debug/spikeserve")
            process.arguments =
                [
                    "serve", "--port", "0", "--models", models, "--role", role, "--log-format", "json", "--watch-interval", "1",
                    "--public", models + "/none",
                ] + extra
            var environment = ProcessInfo.processInfo.environment
            environment["SPIKESERVE_ADMIN_TOKEN"] = "adm"
            process.environment = environment
            let errors = Pipe()
            process.standardError = errors
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            self.process = process
            // The first log lines name the bound port.
            var text = ""
            var port: Int?
            let deadline = Date().addingTimeInterval(60)
            while port == nil, Date() < deadline {
                let chunk = errors.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                text += String(decoding: chunk, as: UTF8.self)
                for line in text.split(separator: "\n") where line.contains("\"listening\"") {
                    if let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String] {
                        port = object["port"].flatMap(Int.init)
                    }
                }
            }
            guard let port else {
                process.terminate()
                throw CancellationError()
            }
            self.port = port
            // Keep draining the log so the process never blocks on a full pipe.
            errors.fileHandleForReading.readabilityHandler = { handle in _ = handle.availableData }
        }

        func stop() {
            process.terminate()
            process.waitUntilExit()
        }
    }

    /// Classify requests in a loop until stopped, counting the ones that fail.
    final class ClientLoad: Sendable {
        let state = Mutex((running: true, requests: 0, failures: [String]()))
        var failures: [String] { state.withLock { $0.failures } }
        var requests: Int { state.withLock { $0.requests } }
        func stop() { state.withLock { $0.running = false } }

        func run(replica: Int, base: String) async {
            while state.withLock({ $0.running }) {
                let (status, version) = (try? await ReplicaTests.servedVersion(base)) ?? (0, nil)
                state.withLock {
                    $0.requests += 1
                    if status != 200 { $0.failures.append("replica \(replica): status \(status), version \(version ?? "-")") }
                }
            }
        }
    }

    static func servedVersion(_ base: String) async throws -> (status: Int, version: String?) {
        let r = try await curl([
            "-H", "Content-Type: image/png", "--data-binary", "@" + fixture("seven.png"), base + "/v1/models/tiny/classify",
        ])
        return (r.status, r.headers["x-model-version"])
    }

    @Test func workerPublishesAndBothReplicasAdoptWithoutFailedRequests() async throws {
        let models = try makeModelsDirectory()
        defer { try? FileManager.default.removeItem(atPath: models) }
        let worker = try ServerProcess(role: "worker", models: models, extra: ["--data-root", repositoryRoot + "/Tests/SNNTests/Fixtures"])
        defer { worker.stop() }
        let replicas = [
            try ServerProcess(role: "inference", models: models, extra: ["--worker-url", worker.base]),
            try ServerProcess(role: "inference", models: models, extra: ["--worker-url", worker.base]),
        ]
        defer { for r in replicas { r.stop() } }
        for r in replicas {
            for _ in 0..<200 where try await Self.servedVersion(r.base).version != "1" { try await Task.sleep(for: .milliseconds(50)) }
            #expect(try await Self.servedVersion(r.base).version == "1")
        }

        // An inference replica sends job requests to the worker.
        let misdirected = try await curl(FineTuningJobTests.admin + [replicas[0].base + "/v1/fine_tuning/jobs"])
        #expect(misdirected.status == 421 && misdirected.errorCode == "wrong_role")
        #expect(String(decoding: misdirected.body, as: UTF8.self).contains(worker.base))

        // Client load on both replicas for the whole job.
        let load = ClientLoad()
        let bases = replicas.map(\.base)
        let clients = bases.enumerated().map { i, base in
            Task { await load.run(replica: i, base: base) }
        }

        let created = try await FineTuningJobTests.createJob(worker.base, FineTuningJobTests.quickJob)
        #expect(created.status == 201, "\(String(decoding: created.body, as: UTF8.self))")
        let id = try #require(created.json["id"] as? String)
        let job = try await FineTuningJobTests.waitForJob(
            worker.base, id, until: { ["succeeded", "failed", "cancelled"].contains($0["status"] as? String) }, seconds: 120)
        // Publication is the moment the worker replaced serving.json.
        let pointer = models + "/tiny/serving.json"
        let published = try #require(try FileManager.default.attributesOfItem(atPath: pointer)[.modificationDate] as? Date)
        #expect(job["status"] as? String == "succeeded", "\(job)")
        let version = try #require((job["result"] as? [String: Any])?["model_version"] as? Int)

        // Both replicas serve it within 5 s of its publication.
        var adopted = [false, false]
        while adopted.contains(false), Date().timeIntervalSince(published) < 10 {
            for i in 0..<2 where !adopted[i] {
                adopted[i] = try await Self.servedVersion(replicas[i].base).version == String(version)
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        let lag = Date().timeIntervalSince(published)
        #expect(adopted == [true, true] && lag < 5, "adopted \(adopted) after \(lag) s")
        try await Task.sleep(for: .milliseconds(500))
        load.stop()
        for client in clients { await client.value }
        #expect(load.failures.isEmpty, "\(load.failures)")
        #expect(load.requests > 20)
        print(
            String(
                format: "replicas adopted version %d %.2f s after publication; %d requests, %d failed", version, lag, load.requests,
                load.failures.count))

        // A version published but not deployed (below min_accuracy) is never adopted: the pointer
        // decides, not the highest number.
        let refused = try await FineTuningJobTests.createJob(
            worker.base,
            #"{"model": "tiny", "training_data": "mnist-small", "hyperparameters": {"timesteps": 2, "epochs": 1, "batch_size": 20, "limit": 60}, "min_accuracy": 1.0}"#
        )
        let refusedJob = try await FineTuningJobTests.waitForJob(
            worker.base, try #require(refused.json["id"] as? String),
            until: { ["succeeded", "failed", "cancelled"].contains($0["status"] as? String) }, seconds: 120)
        let kept = try #require((refusedJob["result"] as? [String: Any])?["model_version"] as? Int)
        #expect(refusedJob["status"] as? String == "failed" && kept == version + 1, "\(refusedJob)")
        try await Task.sleep(for: .seconds(2))
        for r in replicas { #expect(try await Self.servedVersion(r.base).version == String(version)) }

        // A version that does not load on a replica is never served there: the previous default
        // keeps serving and readiness names the problem.
        let brokenNumber = kept + 1
        let broken = models + "/tiny/\(brokenNumber)"
        let staging = models + "/tiny/.\(brokenNumber).tmp-test"
        try FileManager.default.copyItem(atPath: models + "/tiny/\(version)", toPath: staging)
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: staging + "/weights.safetensors"))
        try FileManager.default.moveItem(atPath: staging, toPath: broken)
        let stagedPointer = models + "/tiny/.serving.json.tmp-test"
        try Data(#"{"default_version": \#(brokenNumber)}"#.utf8).write(to: URL(fileURLWithPath: stagedPointer))
        #expect(rename(stagedPointer, pointer) == 0)
        try await Task.sleep(for: .seconds(3))
        for r in replicas {
            let served = try await Self.servedVersion(r.base)
            #expect(served.status == 200 && served.version == String(version))
            let readiness = try await curl([r.base + "/readyz"])
            let problems = readiness.json["problems"] as? [String: String] ?? [:]
            #expect(readiness.status == 200 && problems["tiny"]?.contains("version \(brokenNumber)") == true, "\(readiness.json)")
        }
    }

    /// Without inotify (a volume whose events never arrive), the scan alone finds a new version
    /// and a changed default.
    @Test func pollingAloneNoticesAVersionAndADefault() async throws {
        let models = try makeModelsDirectory()
        defer { try? FileManager.default.removeItem(atPath: models) }
        let store = ModelStore(root: models)
        try store.loadAll()
        var configuration = StoreWatcher.Configuration()
        configuration.useInotify = false
        configuration.pollInterval = 0.2
        let adopted = Mutex<[String]>([])
        let watcher = StoreWatcher(store: store, configuration: configuration, logger: Logger(label: "test")) { name, version in
            store.adoptDefault(name, version: version)
            adopted.withLock { $0.append("\(name) \(version)") }
        }
        watcher.start()
        defer { watcher.stop() }
        try tinyModel(seed: 9).save(to: models + "/tiny/7")
        try Data(#"{"default_version": 7}"#.utf8).write(to: URL(fileURLWithPath: models + "/tiny/serving.json"), options: .atomic)
        for _ in 0..<50 where adopted.withLock({ $0 }).isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        #expect(adopted.withLock { $0 } == ["tiny 7"])
        #expect(store.entry("tiny")?.defaultVersion == 7 && store.entry("tiny")?.versions[7] != nil)
    }
}
