import Foundation
import Serving
import Testing

/// The repository root, found from this file's path.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

/// Runs a program on a Dispatch thread (see `curl`), returning its exit status and combined output.
func run(_ executable: String, _ arguments: [String], timeout: TimeInterval = 300) async throws -> (status: Int32, output: String) {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try runBlocking(executable, arguments, timeout: timeout) }) }
    }
}

func runBlocking(_ executable: String, _ arguments: [String], timeout: TimeInterval) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
    if process.isRunning { process.terminate() }
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Tests with real external clients: a browser and an OpenAPI contract tester. Their tools are
/// installed by `scripts/setup.sh --test` (README's test command runs it first).
@Suite(.serialized) struct ExternalClientTests {
    let python = repositoryRoot + "/.build-venv/bin/python"

    @Test func webPageClassifiesInChromium() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: python), "run scripts/setup.sh --test first: it installs selenium")
        #expect(
            FileManager.default.isExecutableFile(atPath: "/usr/bin/chromedriver"), "run scripts/setup.sh --test first: it installs chromium-driver")
        let server = try await TestServer(publicDirectory: repositoryRoot + "/Public")
        defer { Task { await server.stop() } }
        let page = try await curl([server.base + "/"])
        #expect(page.status == 200 && String(decoding: page.body, as: UTF8.self).contains("SpikeServe"))
        let result = try await run(python, [repositoryRoot + "/Tests/browser/classify_page.py", server.base, fixture("seven.png"), "tiny"])
        #expect(result.status == 0, "browser test failed:\n\(result.output)")
        #expect(result.output.contains("prediction="))
    }

    @Test func jobsPanelRunsAJobAndRollsBack() async throws {
        let server = try await TestServer(
            tokens: AccessTokens(admin: "adm", inference: nil), publicDirectory: repositoryRoot + "/Public",
            dataRoot: repositoryRoot + "/Tests/SNNTests/Fixtures")
        defer { Task { await server.stop() } }
        let result = try await run(python, [repositoryRoot + "/Tests/browser/jobs_page.py", server.base, "adm", "mnist-small", "4"])
        #expect(result.status == 0, "browser test failed:\n\(result.output)")
        #expect(result.output.contains("rolled back to 1"))
        #expect(try await curl([server.base + "/v1/models/tiny"]).json["default_version"] as? Int == 1)
    }

    @Test func apiMatchesItsOpenAPIDocument() async throws {
        let schemathesis = repositoryRoot + "/.build-venv/bin/schemathesis"
        #expect(FileManager.default.isExecutableFile(atPath: schemathesis), "run scripts/setup.sh --test first: it installs schemathesis")
        let server = try await TestServer(tokens: AccessTokens(admin: "adm-token", inference: "inf-token"))
        defer { Task { await server.stop() } }
        // 503 (a version that failed to load) and 504 (deadline_ms) are documented answers, so the
        // generic "no 5xx" check is off; `status_code_conformance` still fails on any status the
        // document does not list, such as a 500.
        let result = try await run(
            schemathesis,
            [
                "run", server.base + "/openapi.json", "--checks", "all", "--max-examples", "25", "--no-color", "--seed", "1",
                "--exclude-checks", "positive_data_acceptance,not_a_server_error", "-H", "Authorization: Bearer adm-token",
            ])
        #expect(result.status == 0, "schemathesis found mismatches:\n\(result.output.suffix(6000))")
    }
}
