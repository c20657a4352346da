import Foundation
import SNN
import Serving
import TensorKit
import Testing

/// `POST /v1/models`: an ONNX file or a safetensors state dict becomes a served model through a
/// conversion job (and an optional fine-tuning job), with curl as the client.
@Suite(.serialized) struct ModelCreationTests {
    static let dataRoot = repositoryRoot + "/Tests/SNNTests/Fixtures"
    static let onnx = repositoryRoot + "/Tests/ModelImportTests/Fixtures/"

    static func post(_ base: String, file: String, _ query: String, admin: Bool = true) async throws -> CurlResult {
        try await curl(
            (admin ? FineTuningJobTests.admin : []) + [
                "-H", "Content-Type: application/octet-stream", "--data-binary", "@" + file, base + "/v1/models?" + query,
            ])
    }

    static func finished(_ base: String, _ id: String) async throws -> [String: Any] {
        try await FineTuningJobTests.waitForJob(
            base, id, until: { ["succeeded", "failed", "cancelled"].contains($0["status"] as? String) }, seconds: 300)
    }

    @Test func onnxUploadConvertsFineTunesAndServes() async throws {
        let server = try await TestServer(tokens: FineTuningJobTests.tokens, dataRoot: Self.dataRoot)
        defer { Task { await server.stop() } }
        let created = try await Self.post(
            server.base, file: Self.onnx + "torch-resnet.onnx",
            "name=resnet-small&calibration_data=cifar10-small&timesteps=8&calibration_images=16&calibration_timesteps=8"
                + "&fine_tune_epochs=1&fine_tune_timesteps=4")
        #expect(created.status == 202, "\(String(decoding: created.body, as: UTF8.self))")
        let id = try #require(created.json["id"] as? String)
        #expect(created.json["object"] as? String == "conversion.job" && created.headers["location"] == "/v1/fine_tuning/jobs/\(id)")
        let job = try await Self.finished(server.base, id)
        #expect(job["status"] as? String == "succeeded", "\(job)")
        let result = job["result"] as? [String: Any] ?? [:]
        #expect(result["model_version"] as? Int == 1 && result["deployed"] as? Bool == true)

        // It serves, with the data's class folders as labels.
        let detail = try await curl([server.base + "/v1/models/resnet-small"]).json
        #expect(detail["default_version"] as? Int == 1 || detail["default_version"] as? Int == 2)
        #expect((detail["labels"] as? [String])?.first == "airplane")
        let classify = try await curl([
            "-H", "Content-Type: image/jpeg", "--data-binary", "@" + Self.dataRoot + "/cifar10-small/ship/0001.jpg",
            server.base + "/v1/models/resnet-small/classify",
        ])
        #expect(classify.status == 200, "\(String(decoding: classify.body, as: UTF8.self))")

        // The fine-tuning job it queued publishes version 2.
        let next = try #require(result["next_job"] as? String)
        let tuned = try await Self.finished(server.base, next)
        #expect(tuned["object"] as? String == "fine_tuning.job" && tuned["status"] as? String == "succeeded", "\(tuned)")
        let events = try await curl(FineTuningJobTests.admin + [server.base + "/v1/fine_tuning/jobs/\(id)/events?limit=100"]).json
        let messages = (events["data"] as? [[String: Any]] ?? []).compactMap { $0["message"] as? String }
        #expect(messages.contains { $0.hasPrefix("converting") } && messages.contains { $0.contains("queued fine-tuning job") }, "\(messages)")

        // The name is taken now.
        let again = try await Self.post(server.base, file: Self.onnx + "torch-resnet.onnx", "name=resnet-small&calibration_data=cifar10-small")
        #expect(again.status == 409 && again.errorCode == "model_exists")
        // The imported ANN is not kept once the job has ended.
        let jobDirectory = server.models + "/.spikeserve/jobs/\(id)"
        #expect(!FileManager.default.fileExists(atPath: jobDirectory + "/imported"))
    }

    @Test func safetensorsUploadWithArchitecture() async throws {
        var rng = SeededGenerator(seed: 3)
        var tensors: [String: Tensor] = [:]
        for (name, shape) in try Architectures.layers(for: "mnist-cnn").parameterShapes() {
            tensors[name] = Tensor.kaimingNormal(shape: shape, fanIn: shape.dropFirst().reduce(1, *), generator: &rng)
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("state-\(UUID().uuidString.prefix(8)).safetensors").path
        try SafeTensors.encode(tensors).write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let server = try await TestServer(tokens: FineTuningJobTests.tokens, dataRoot: Self.dataRoot)
        defer { Task { await server.stop() } }
        let created = try await Self.post(
            server.base, file: file,
            "name=digits&arch=mnist-cnn&calibration_data=mnist-small&timesteps=8&calibration_images=20&calibration_timesteps=8")
        #expect(created.status == 202, "\(String(decoding: created.body, as: UTF8.self))")
        let job = try await Self.finished(server.base, try #require(created.json["id"] as? String))
        #expect(job["status"] as? String == "succeeded", "\(job)")
        let classify = try await curl([
            "-H", "Content-Type: image/png", "--data-binary", "@" + fixture("seven.png"), server.base + "/v1/models/digits/classify",
        ])
        #expect(classify.status == 200 && classify.headers["x-model-version"] == "1")
    }

    @Test func badUploadsAreRefusedAndLeaveNothing() async throws {
        let server = try await TestServer(tokens: FineTuningJobTests.tokens, dataRoot: Self.dataRoot)
        defer { Task { await server.stop() } }
        let maxpool = try await Self.post(server.base, file: Self.onnx + "refuse-maxpool.onnx", "name=m&calibration_data=cifar10-small")
        #expect(maxpool.status == 400 && maxpool.errorCode == "invalid_model_file")
        #expect(String(decoding: maxpool.body, as: UTF8.self).contains("(MaxPool)"))
        let garbage = try await Self.post(server.base, file: Self.onnx + "refuse-garbage.onnx", "name=g&calibration_data=cifar10-small")
        #expect(garbage.status == 400 && garbage.errorCode == "invalid_model_file")
        let unauthorized = try await Self.post(server.base, file: Self.onnx + "torch-vgg.onnx", "name=v&calibration_data=cifar10-small", admin: false)
        #expect(unauthorized.status == 401)
        let cases: [(String, String)] = [
            ("calibration_data=cifar10-small", "name is required"),
            ("name=../x&calibration_data=cifar10-small", "name is required"),
            ("name=v", "calibration_data is required"),
            ("name=v&calibration_data=cifar10-small&timesteps=0", "timesteps"),
            ("name=v&calibration_data=cifar10-small&colour=red", "unknown query parameter 'colour'"),
            ("name=v&calibration_data=cifar10-small&mean=0.5", "mean and std go together"),
            ("name=v&calibration_data=cifar10-small&fine_tune_timesteps=4", "need fine_tune_epochs"),
            ("name=v&calibration_data=nowhere", "nowhere"),
            ("name=tiny&calibration_data=cifar10-small", "exists"),
        ]
        for (query, phrase) in cases {
            let r = try await Self.post(server.base, file: Self.onnx + "torch-vgg.onnx", query)
            let text = String(decoding: r.body, as: UTF8.self)
            #expect((400...409).contains(r.status) && text.contains(phrase), "\(query): \(r.status) \(text)")
        }
        // Labels that do not fit the outputs name both counts.
        let labels = try await Self.post(server.base, file: Self.onnx + "torch-vgg.onnx", "name=v&calibration_data=cifar10-small&labels=a,b")
        #expect(labels.status == 400 && String(decoding: labels.body, as: UTF8.self).contains("2 labels for 10 outputs"))
        let models = try await curl([server.base + "/v1/models"]).json["models"] as? [[String: Any]] ?? []
        #expect(models.map { $0["name"] as? String } == ["tiny"])
        let uploads = (try? FileManager.default.contentsOfDirectory(atPath: server.models + "/.spikeserve/uploads")) ?? []
        #expect(uploads.isEmpty, "\(uploads)")
    }
}

/// What conversion jobs leave behind when they do not finish, and a state dict refused over the API.
@Suite(.serialized) struct ModelCreationCleanupTests {
    @Test func cancelledWhileQueuedLeavesNothingAndFreesTheName() async throws {
        let server = try await TestServer(tokens: FineTuningJobTests.tokens, dataRoot: ModelCreationTests.dataRoot)
        defer { Task { await server.stop() } }
        // A fine-tuning job keeps the one runner busy, so the conversion job waits in the queue.
        let busy = try await FineTuningJobTests.createJob(
            server.base,
            #"{"model": "tiny", "training_data": "mnist-small", "hyperparameters": {"timesteps": 8, "epochs": 30, "batch_size": 10}, "force": true}"#)
        let busyID = try #require(busy.json["id"] as? String)
        let created = try await ModelCreationTests.post(
            server.base, file: ModelCreationTests.onnx + "torch-vgg.onnx", "name=queued&calibration_data=cifar10-small")
        let id = try #require(created.json["id"] as? String)
        let imported = server.models + "/.spikeserve/jobs/\(id)/imported"
        #expect(FileManager.default.fileExists(atPath: imported + "/model.json"))
        let cancelled = try await curl(FineTuningJobTests.admin + ["-X", "POST", server.base + "/v1/fine_tuning/jobs/\(id)/cancel"])
        #expect(cancelled.status == 200 && cancelled.json["status"] as? String == "cancelled", "\(cancelled.json)")
        #expect(!FileManager.default.fileExists(atPath: imported))
        _ = try await curl(FineTuningJobTests.admin + ["-X", "POST", server.base + "/v1/fine_tuning/jobs/\(busyID)/cancel"])
        // The name is free again.
        let again = try await ModelCreationTests.post(
            server.base, file: ModelCreationTests.onnx + "torch-vgg.onnx", "name=queued&calibration_data=cifar10-small&calibration_images=8")
        #expect(again.status == 202, "\(String(decoding: again.body, as: UTF8.self))")
        let job = try await ModelCreationTests.finished(server.base, try #require(again.json["id"] as? String))
        #expect(job["status"] as? String == "succeeded", "\(job)")
    }

    @Test func stateDictWithAMissingTensorIsRefusedNamingIt() async throws {
        var rng = SeededGenerator(seed: 4)
        var tensors: [String: Tensor] = [:]
        for (name, shape) in try Architectures.layers(for: "mnist-cnn").parameterShapes() where name != "classifier.3.weight" {
            tensors[name] = Tensor.kaimingNormal(shape: shape, fanIn: 9, generator: &rng)
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("partial-\(UUID().uuidString.prefix(8)).safetensors").path
        try SafeTensors.encode(tensors).write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let server = try await TestServer(tokens: FineTuningJobTests.tokens, dataRoot: ModelCreationTests.dataRoot)
        defer { Task { await server.stop() } }
        let r = try await ModelCreationTests.post(server.base, file: file, "name=partial&arch=mnist-cnn&calibration_data=mnist-small")
        #expect(r.status == 400 && r.errorCode == "invalid_model_file")
        #expect(String(decoding: r.body, as: UTF8.self).contains("'classifier.3.weight': missing"))
        #expect(try await curl([server.base + "/v1/models/partial"]).status == 404)
    }
}
