import Foundation
import Logging
import Synchronization
import Testing

@testable import HTTPServer

/// Every HTTP server test runs serially: they measure latencies on a small, busy machine.
@Suite(.serialized) struct HTTPServerTests {}

enum TestError: Error, CustomStringConvertible {
    case failure(String)
    var description: String {
        switch self {
        case .failure(let message): message
        }
    }
}

/// Runs blocking work (sockets, processes) on a thread of its own, keeping the cooperative pool
/// free for the server's handler tasks.
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
        }
        thread.start()
    }
}

/// Polls `condition` every 10 ms for up to 5 s; the caller asserts afterwards.
func eventually(_ condition: () -> Bool) async throws {
    for _ in 0..<500 where !condition() { try await Task.sleep(for: .milliseconds(10)) }
}

extension Server.Configuration {
    /// Port 0, two I/O threads, short timeouts.
    static func test(
        headerRead: Duration = .seconds(5),
        bodyIdle: Duration = .seconds(5),
        keepAliveIdle: Duration = .seconds(5),
        limits: Limits = Limits()
    ) -> Server.Configuration {
        Server.Configuration(
            host: "127.0.0.1", port: 0, limits: limits,
            timeouts: Timeouts(
                headerRead: headerRead, bodyIdle: bodyIdle, keepAliveIdle: keepAliveIdle, shutdownGrace: .seconds(3), writeIdle: .seconds(5),
                lingeringClose: .milliseconds(500)),
            ioThreads: 2)
    }
}

func quietLogger() -> Logger {
    var logger = Logger(label: "http-test")
    logger.logLevel = .error
    return logger
}

/// Starts a server on a free port, runs `body` with the port, shuts the server down.
func withServer<T: Sendable>(
    _ configuration: Server.Configuration = .test(),
    logger: Logger = quietLogger(),
    streamingBody: (@Sendable (String, String) -> Int?)? = nil,
    handler: @escaping HTTPHandler,
    _ body: (Int) async throws -> T
) async throws -> T {
    let server = Server(configuration: configuration, logger: logger, streamingBody: streamingBody, handler: handler)
    try server.start()
    let result: T
    do {
        result = try await body(server.boundPort)
    } catch {
        await server.shutdown()
        throw error
    }
    await server.shutdown()
    return result
}

/// The routes most tests use.
func testRouter() -> Router {
    var router = Router()
    router.get("/hello") { _ in .text(200, "hello") }
    router.post("/echo") { request in
        HTTPResponse(status: 200, headers: ["Content-Type": "application/octet-stream"], body: request.body)
    }
    router.get("/sleep/{ms}") { request in
        let ms = Int(request.pathParameters["ms"] ?? "") ?? 0
        try await Task.sleep(for: .milliseconds(ms))
        return .text(200, "slept \(ms)")
    }
    router.get("/path/{name}") { request in .text(200, request.pathParameters["name"] ?? "") }
    router.get("/fail") { _ in throw TestError.failure("secret detail") }
    router.get("/events") { _ in
        .serverSentEvents { writer in
            for i in 0..<3 {
                try await writer.writeEvent(id: "\(i)", event: "tick", data: "event \(i)")
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }
    return router
}

/// Elapsed seconds of `body`.
func timed<T>(_ body: () throws -> T) rethrows -> (T, Double) {
    let start = ContinuousClock.now
    let value = try body()
    let elapsed = ContinuousClock.now - start
    return (value, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}

/// Log handler that keeps records for inspection.
final class CapturingLogHandler: LogHandler, @unchecked Sendable {
    // @unchecked Sendable: `records` is guarded by the Mutex; `metadata`/`logLevel` are only set
    // before the logger is shared (LogHandler requires them to be mutable).
    struct Record: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    let records = Mutex<[Record]>([])
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var flat: [String: String] = [:]
        for (key, value) in event.metadata ?? [:] { flat[key] = "\(value)" }
        let record = Record(level: event.level, message: "\(event.message)", metadata: flat)
        records.withLock { $0.append(record) }
    }
}
