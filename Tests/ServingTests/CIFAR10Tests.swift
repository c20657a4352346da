import Foundation
import Serving
import Testing

/// The shipped CIFAR-10 model (`Models/cifar10-cnn`: 1 converted by threshold balancing, 2 from
/// QCFS clips, 3 the hybrid and default) over the API, with the committed class
/// fixtures (`Fixtures/cifar10`: one validation-split image per class as its original 32×32 JPEG, as
/// PNG, and two enlarged to 480×360, which the documented policy center-crops and resizes to
/// 32×32), and a
/// fine-tuning job on the committed CIFAR-10 subset (`SNNTests/Fixtures/cifar10-small`, 8 images
/// per class).
@Suite(.serialized) struct CIFAR10Tests {
    static let classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    /// A models directory holding a copy of the shipped model, so that jobs never write into the
    /// repository.
    static func shippedModels() throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("cifar-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: repositoryRoot + "/Models/cifar10-cnn", toPath: root + "/cifar10-cnn")
        return root
    }

    static func classify(_ base: String, _ file: String, _ type: String, query: String = "") async throws -> CurlResult {
        try await curl([
            "-H", "Content-Type: " + type, "--data-binary", "@" + fixture("cifar10/" + file), base + "/v1/models/cifar10-cnn/classify" + query,
        ])
    }

    static func topLabel(_ response: CurlResult) -> String? {
        let results = response.json["results"] as? [[String: Any]]
        return (results?.first?["predictions"] as? [[String: Any]])?.first?["label"] as? String
    }

    @Test func everyClassFixtureIsClassifiedAsItsClass() async throws {
        let models = try Self.shippedModels()
        let server = try await TestServer(models: models)
        defer { Task { await server.stop() } }
        let detail = try await curl([server.base + "/v1/models/cifar10-cnn"]).json
        #expect(detail["labels"] as? [String] == Self.classes)
        for name in Self.classes {
            let jpeg = try await Self.classify(server.base, name + ".jpg", "image/jpeg")
            #expect(jpeg.status == 200 && Self.topLabel(jpeg) == name, "\(name).jpg: \(String(decoding: jpeg.body, as: UTF8.self))")
            let png = try await Self.classify(server.base, name + ".png", "image/png")
            #expect(png.status == 200 && Self.topLabel(png) == name, "\(name).png: \(String(decoding: png.body, as: UTF8.self))")
        }
        for name in ["cat-large", "ship-large"] {
            let large = try await Self.classify(server.base, name + ".jpg", "image/jpeg")
            #expect(Self.topLabel(large) == String(name.prefix { $0 != "-" }), "\(name): \(String(decoding: large.body, as: UTF8.self))")
        }
        // The default is the hybrid (version 3); the two conversions answer too, at their own budgets.
        let hybrid = try await Self.classify(server.base, "ship.jpg", "image/jpeg")
        #expect(hybrid.headers["x-model-version"] == "3")
        for version in ["1", "2"] {
            let converted = try await curl([
                "-H", "Content-Type: image/jpeg", "--data-binary", "@" + fixture("cifar10/ship.jpg"),
                server.base + "/v1/models/cifar10-cnn/versions/\(version)/classify",
            ])
            #expect(converted.status == 200 && converted.headers["x-model-version"] == version)
        }
        // Adaptive steps stop within the budget and still name the class.
        let adaptive = try await Self.classify(server.base, "truck.jpg", "image/jpeg", query: "?timesteps=16&adaptive=true")
        let result = (adaptive.json["results"] as? [[String: Any]])?.first ?? [:]
        #expect(Self.topLabel(adaptive) == "truck" && (result["timesteps_used"] as? Int ?? 99) <= 16)
    }

    @Test func fineTuningJobOnACIFARSubsetPublishesAVersion() async throws {
        let models = try Self.shippedModels()
        let server = try await TestServer(
            tokens: FineTuningJobTests.tokens, models: models, dataRoot: repositoryRoot + "/Tests/SNNTests/Fixtures")
        defer { Task { await server.stop() } }
        let created = try await FineTuningJobTests.createJob(
            server.base,
            #"{"model": "cifar10-cnn", "training_data": "cifar10-small", "validation_split": 0.25, "hyperparameters": {"timesteps": 4, "epochs": 1, "batch_size": 16, "surrogate": "linear"}, "force": true}"#
        )
        #expect(created.status == 201, "\(String(decoding: created.body, as: UTF8.self))")
        let id = try #require(created.json["id"] as? String)
        let job = try await FineTuningJobTests.waitForJob(
            server.base, id, until: { ["succeeded", "failed", "cancelled"].contains($0["status"] as? String) }, seconds: 300)
        #expect(job["status"] as? String == "succeeded", "job: \(job)")
        let version = try #require((job["result"] as? [String: Any])?["model_version"] as? Int)
        let versions = try await curl([server.base + "/v1/models/cifar10-cnn/versions"]).json["versions"] as? [[String: Any]] ?? []
        #expect(versions.contains { $0["version"] as? Int == version && $0["state"] as? String == "ready" }, "\(versions)")
        let answer = try await curl([
            "-H", "Content-Type: image/jpeg", "--data-binary", "@" + fixture("cifar10/frog.jpg"),
            server.base + "/v1/models/cifar10-cnn/versions/\(version)/classify",
        ])
        #expect(answer.status == 200 && answer.headers["x-model-version"] == String(version))
        // The new version still carries the ANN the hybrid was converted from, unchanged.
        let source = try #require(FileManager.default.contents(atPath: models + "/cifar10-cnn/3/ann.safetensors"))
        #expect(FileManager.default.contents(atPath: models + "/cifar10-cnn/\(version)/ann.safetensors") == source)
    }
}
