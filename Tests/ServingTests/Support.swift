import Foundation
import HTTPServer
import Logging
import SNN
import Serving
import TensorKit

func fixture(_ name: String) -> String {
    Bundle.module.url(forResource: "Fixtures/" + name, withExtension: nil)!.path
}

/// A small converted CNN with random weights: fast to simulate, deterministic, valid.
func tinyModel(seed: UInt64, name: String = "tiny") -> Model {
    var rng = SeededGenerator(seed: seed)
    let layers: [LayerSpec] = [.conv("c1", 1, 4), .relu, .avgPool(), .avgPool(), .flatten, .linear("fc", 4 * 7 * 7, 10)]
    let tensors = [
        "c1.weight": Tensor.kaimingNormal(shape: [4, 1, 3, 3], fanIn: 9, generator: &rng),
        "fc.weight": Tensor.kaimingNormal(shape: [10, 196], fanIn: 196, generator: &rng),
    ]
    var d = ModelDescription(
        name: name, architecture: "custom", input: Architectures.input(for: "mnist-cnn"),
        labels: (0..<10).map(String.init), layers: layers)
    d.snn = SNNConfig(thresholds: [0.5], encoding: .poisson, defaultTimesteps: 4, maxTimesteps: 64)
    d.provenance.accuracies["snn_t4"] = 0.5
    return Model(description: d, tensors: tensors)
}

/// A models directory: tiny/1 and tiny/2 valid, tiny/3 with a corrupt weights file.
func makeModelsDirectory() throws -> String {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("models-\(UUID().uuidString.prefix(8))").path
    try tinyModel(seed: 1).save(to: root + "/tiny/1")
    try tinyModel(seed: 2).save(to: root + "/tiny/2")
    try tinyModel(seed: 3).save(to: root + "/tiny/3")
    try Data([0, 1, 2]).write(to: URL(fileURLWithPath: root + "/tiny/3/weights.safetensors"))
    try Data(#"{"default_version": 1}"#.utf8).write(to: URL(fileURLWithPath: root + "/tiny/serving.json"))
    return root
}

/// A running application on an ephemeral port.
final class TestServer: Sendable {
    let app: ServingApplication
    let models: String
    var base: String { "http://127.0.0.1:\(app.server.boundPort)" }

    init(
        tokens: AccessTokens = AccessTokens(), batching: InferenceScheduler.Configuration = .init(),
        publicDirectory: String? = nil, models existing: String? = nil, dataRoot: String? = nil,
        concurrentJobs: Int = 1
    ) async throws {
        models = try existing ?? makeModelsDirectory()
        var config = Server.Configuration()
        config.port = 0
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        var jobs = JobManager.Configuration(stateDirectory: models + "/.spikeserve", dataRoot: dataRoot)
        jobs.maxConcurrentJobs = concurrentJobs
        app = try ServingApplication(
            modelsDirectory: models, publicDirectory: publicDirectory, tokens: tokens, batching: batching,
            jobs: jobs, server: config, logger: logger)
        try app.start()
        // Wait for the startup warm-up.
        for _ in 0..<500 {
            if app.store.startupWarmUpFinished { return }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func stop() async {
        await app.server.shutdown()
        app.jobs?.stop()
        app.scheduler.stop()
        app.api.decoder.stop()
    }
}

struct CurlResult {
    var status: Int
    var headers: [String: String]
    var body: Data
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body) as? [String: Any]) ?? [:] }
    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
}

/// Runs curl (a real client) and returns status, headers (lower-cased names) and body.
///
/// The wait happens on a Dispatch thread, never on Swift concurrency's cooperative pool: the
/// server under test runs its handlers on that pool, which has only one thread per core, so tests
/// blocking it would starve the server they are waiting for.
func curl(_ arguments: [String]) async throws -> CurlResult {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try curlBlocking(arguments) }) }
    }
}

func curlBlocking(_ arguments: [String]) throws -> CurlResult {
    let headerFile = FileManager.default.temporaryDirectory.appendingPathComponent("h-\(UUID().uuidString)").path
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
    process.arguments = ["-s", "-D", headerFile, "--max-time", "30"] + arguments
    let out = Pipe()
    process.standardOutput = out
    try process.run()
    let body = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let headerText = (try? String(contentsOfFile: headerFile, encoding: .utf8)) ?? ""
    try? FileManager.default.removeItem(atPath: headerFile)
    // With 100-continue there may be several header blocks; the last one is the response.
    let blocks = headerText.components(separatedBy: "\r\n\r\n").filter { !$0.isEmpty }
    let last = blocks.last ?? ""
    var status = 0
    var headers: [String: String] = [:]
    for (i, line) in last.components(separatedBy: "\r\n").enumerated() {
        if i == 0 {
            status = Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
        } else if let colon = line.firstIndex(of: ":") {
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
    }
    return CurlResult(status: status, headers: headers, body: body)
}
