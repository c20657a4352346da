import Foundation
import Logging
import Synchronization
import Testing

@testable import HTTPServer

/// Connection handling with raw sockets: pipelining, keep-alive rules, HEAD, concurrency, streaming.
extension HTTPServerTests {
    @Suite struct Connections {
        @Test func pipelinedResponsesComeInRequestOrder() async throws {
            let responses = try await withServer(handler: testRouter().handler()) { port in
                try await blocking { () -> [TestResponse] in
                    let client = try RawClient(port: port)
                    // The first handler is the slowest: its response must still come first.
                    try client.send(
                        "GET /sleep/300 HTTP/1.1\r\nHost: x\r\n\r\nGET /path/second HTTP/1.1\r\nHost: x\r\n\r\nGET /path/third HTTP/1.1\r\nHost: x\r\n\r\n"
                    )
                    return try (0..<3).map { _ in try client.readResponse() }
                }
            }
            #expect(responses.map(\.text) == ["slept 300", "second", "third"])
        }

        @Test func notFoundAndMethodNotAllowed() async throws {
            let (missing, wrongMethod) = try await withServer(handler: testRouter().handler()) { port in
                try await blocking { () -> (TestResponse, TestResponse) in
                    let client = try RawClient(port: port)
                    try client.send("GET /missing HTTP/1.1\r\nHost: x\r\n\r\n")
                    let missing = try client.readResponse()
                    try client.send("DELETE /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                    return (missing, try client.readResponse())
                }
            }
            #expect(missing.status == 404)
            #expect(missing.text.contains("\"code\":\"not_found\""))
            #expect(missing.header("Connection") == nil, "a 404 keeps the connection")
            #expect(wrongMethod.status == 405)
            #expect(wrongMethod.header("Allow") == "GET, HEAD")
            #expect(wrongMethod.text.contains("\"code\":\"method_not_allowed\""))
        }

        @Test func headHasLengthButNoBody() async throws {
            let (head, next) = try await withServer(handler: testRouter().handler()) { port in
                try await blocking { () -> (TestResponse, TestResponse) in
                    let client = try RawClient(port: port)
                    try client.send("HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                    let head = try client.readResponse(head: true)
                    // Had a body been sent, this response would not parse.
                    try client.send("GET /path/after HTTP/1.1\r\nHost: x\r\n\r\n")
                    return (head, try client.readResponse())
                }
            }
            #expect(head.status == 200)
            #expect(head.header("Content-Length") == "5")
            #expect(head.header("Date") != nil)
            #expect(next.text == "after")
        }

        @Test func http10ClosesUnlessKeepAliveAsked() async throws {
            let (plain, closed, kept, second) = try await withServer(handler: testRouter().handler()) { port in
                try await blocking { () -> (TestResponse, Bool, TestResponse, TestResponse) in
                    let a = try RawClient(port: port)
                    try a.send("GET /hello HTTP/1.0\r\n\r\n")
                    let plain = try a.readResponse()
                    let closed = a.isClosedByServer()
                    let b = try RawClient(port: port)
                    try b.send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                    let kept = try b.readResponse()
                    try b.send("GET /path/again HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                    return (plain, closed, kept, try b.readResponse())
                }
            }
            #expect(plain.header("Connection") == "close")
            #expect(closed)
            #expect(kept.header("Connection") == "keep-alive")
            #expect(second.text == "again")
        }

        @Test func connectionCloseIsHonoured() async throws {
            let (response, closed) = try await withServer(handler: testRouter().handler()) { port in
                try await blocking { () -> (TestResponse, Bool) in
                    let client = try RawClient(port: port)
                    try client.send("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    return (try client.readResponse(), client.isClosedByServer())
                }
            }
            #expect(response.status == 200)
            #expect(response.header("Connection") == "close")
            #expect(closed)
        }

        @Test func idleKeepAliveConnectionIsClosedSilently() async throws {
            let (closed, elapsed) = try await withServer(.test(keepAliveIdle: .milliseconds(500)), handler: testRouter().handler()) { port in
                try await blocking { () -> (Bool, Double) in
                    let client = try RawClient(port: port, timeout: 3)
                    try client.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                    _ = try client.readResponse()
                    let (closed, elapsed) = timed { client.isClosedByServer() }
                    return (closed, elapsed)
                }
            }
            #expect(closed, "no response bytes, just a close")
            #expect(elapsed > 0.3 && elapsed < 1.5, "closed after \(elapsed) s")
        }

        @Test func responsesCarryDateLengthAndRequestID() async throws {
            let response = try await withServer(handler: testRouter().handler()) { port in
                try await blocking { try request(port: port, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc-123_x.y\r\n\r\n") }
            }
            #expect(response.header("Content-Length") == "5")
            #expect(response.header("Date").map { HTTPDate.parse($0) != nil } == true)
            #expect(response.header("X-Request-Id") == "abc-123_x.y")
        }

        @Test func handlerErrorsBecome500Json() async throws {
            let response = try await withServer(handler: testRouter().handler()) { port in
                try await blocking { try request(port: port, "GET /fail HTTP/1.1\r\nHost: x\r\n\r\n") }
            }
            #expect(response.status == 500)
            #expect(response.text.contains("\"code\":\"internal\""))
            #expect(!response.text.contains("secret detail"))
        }

        @Test func slowHandlerDoesNotDelayOtherConnections() async throws {
            let (fastElapsed, slow) = try await withServer(handler: testRouter().handler()) { port in
                async let slow = blocking { try request(port: port, "GET /sleep/2000 HTTP/1.1\r\nHost: x\r\n\r\n").text }
                try await Task.sleep(for: .milliseconds(100))
                let fastElapsed = try await blocking { () -> Double in
                    let (response, elapsed) = try timed { try request(port: port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n") }
                    guard response.status == 200 else { throw TestError.failure("status \(response.status)") }
                    return elapsed
                }
                return (fastElapsed, try await slow)
            }
            #expect(fastElapsed < 0.5, "fast request took \(fastElapsed) s behind a 2 s handler")
            #expect(slow == "slept 2000")
        }

        @Test func slowlorisClientDoesNotSlowOthers() async throws {
            try await withServer(handler: testRouter().handler()) { port in
                async let slowloris = blocking { () -> Int in
                    let client = try RawClient(port: port)
                    let header = Array("GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: 0123456789")
                    var sent = 0
                    for byte in header.prefix(12) {
                        try client.send(String(byte))
                        sent += 1
                        Thread.sleep(forTimeInterval: 0.2)
                    }
                    return sent
                }
                let latencies = try await blocking { () -> [Double] in
                    try (0..<20).map { _ in
                        let (response, elapsed) = try timed { try request(port: port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n") }
                        guard response.status == 200 else { throw TestError.failure("status \(response.status)") }
                        Thread.sleep(forTimeInterval: 0.05)
                        return elapsed
                    }
                }
                #expect(try await slowloris == 12)
                let worst = latencies.max() ?? 0
                #expect(worst < 0.5, "latencies \(latencies)")
            }
        }

        @Test func manyConcurrentKeepAliveClients() async throws {
            let errors = try await withServer(.test(limits: .init()), handler: testRouter().handler()) { port in
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for clientIndex in 0..<64 {
                        group.addTask {
                            try await blocking { () -> Int in
                                var errors = 0
                                let client = try RawClient(port: port, timeout: 20)
                                for i in 0..<50 {
                                    try client.send("GET /path/c\(clientIndex)-\(i) HTTP/1.1\r\nHost: x\r\n\r\n")
                                    let response = try client.readResponse()
                                    if response.status != 200 || response.text != "c\(clientIndex)-\(i)" { errors += 1 }
                                }
                                return errors
                            }
                        }
                    }
                    return try await group.reduce(0, +)
                }
            }
            #expect(errors == 0)
        }

        @Test func streamingIsIncrementalAndDisconnectStopsTheWriter() async throws {
            let gate = Mutex<Bool>(false)
            let stopped = Mutex<String?>(nil)
            var router = Router()
            router.get("/stream") { _ in
                .serverSentEvents { writer in
                    do {
                        try await writer.writeEvent(data: "first")
                        // The client must see the first event while the handler is still running.
                        while !gate.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
                        for i in 0..<1000 {
                            try await writer.writeEvent(data: "more \(i)")
                            try await Task.sleep(for: .milliseconds(20))
                        }
                        stopped.withLock { $0 = "finished" }
                    } catch {
                        stopped.withLock { $0 = "threw \(type(of: error))" }
                        throw error
                    }
                }
            }
            let outcome = try await withServer(handler: router.handler()) { port -> String? in
                let first = try await blocking { () -> String in
                    let client = try RawClient(port: port)
                    try client.send("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
                    let head = try client.readHead()
                    guard head.status == 200, head.header("Transfer-Encoding") == "chunked" else { throw TestError.failure("bad head") }
                    // Read just the first event, then hang up.
                    return try client.readUntil("first")
                }
                #expect(first.contains("data: first"))
                gate.withLock { $0 = true }
                for _ in 0..<100 where stopped.withLock({ $0 }) == nil {
                    try await Task.sleep(for: .milliseconds(50))
                }
                return stopped.withLock { $0 }
            }
            #expect(outcome?.hasPrefix("threw") == true, "writer outcome: \(outcome ?? "still running")")
        }

        @Test func gracefulShutdownFinishesInFlightRequests() async throws {
            let server = Server(configuration: .test(), logger: quietLogger(), handler: testRouter().handler())
            try server.start()
            let port = server.boundPort
            let idle = try await blocking { () -> RawClient in
                let client = try RawClient(port: port)
                try client.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                _ = try client.readResponse()
                return client
            }
            async let inFlight = blocking { try request(port: port, "GET /sleep/500 HTTP/1.1\r\nHost: x\r\n\r\n") }
            try await Task.sleep(for: .milliseconds(150))
            let start = ContinuousClock.now
            await server.shutdown()
            let took = ContinuousClock.now - start
            let response = try await inFlight
            #expect(response.status == 200)
            #expect(response.header("Connection") == "close")
            #expect(took < .seconds(2))
            let idleClosed = try await blocking { idle.isClosedByServer() }
            #expect(idleClosed)
            #expect(throws: (any Error).self) { try RawClient(port: port) }
            await server.waitUntilStopped()
        }

        @Test func closedConnectionsAreReleased() async throws {
            try await withServer(handler: testRouter().handler()) { port in
                try await blocking {
                    for _ in 0..<20 { _ = try request(port: port, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") }
                    for _ in 0..<20 { _ = try request(port: port, "GET /hello HTTP/1.1\r\n\r\n") }
                }
            }
            // Teardown finishes on the I/O queues shortly after shutdown returns.
            try await eventually { Connection.liveObjects.load(ordering: .relaxed) == 0 }
            #expect(Connection.liveObjects.load(ordering: .relaxed) == 0)
        }

        @Test func halfClosedClientStillGetsItsAnswers() async throws {
            let responses = try await withServer(handler: testRouter().handler()) { port in
                try await blocking { () -> [TestResponse] in
                    let client = try RawClient(port: port)
                    try client.send("GET /sleep/200 HTTP/1.1\r\nHost: x\r\n\r\nGET /path/next HTTP/1.1\r\nHost: x\r\n\r\n")
                    // FIN while the first handler still sleeps: the server must answer both, then close.
                    _ = shutdown(client.fd, Int32(SHUT_WR))
                    return try (0..<2).map { _ in try client.readResponse() }
                }
            }
            #expect(responses.map(\.text) == ["slept 200", "next"])
            #expect(responses.last?.header("Connection")?.lowercased() == "close")
        }

        @Test func clientResetDuringHandlerCancelsIt() async throws {
            let started = Atomic<Bool>(false)
            let cancelled = Atomic<Bool>(false)
            let handler: HTTPHandler = { _ in
                started.store(true, ordering: .relaxed)
                do {
                    try await Task.sleep(for: .seconds(10))
                } catch {
                    cancelled.store(true, ordering: .relaxed)
                }
                return HTTPResponse(status: 200, body: Array("late".utf8))
            }
            try await withServer(handler: handler) { port in
                do {
                    let client = try RawClient(port: port)
                    try client.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
                    try await eventually { started.load(ordering: .relaxed) }
                    // SO_LINGER 0: closing sends RST, so the server sees an error/hang-up, not a FIN.
                    var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                    setsockopt(client.fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
                }  // the client (and its socket) ends here
                try await eventually { cancelled.load(ordering: .relaxed) }
                let wasCancelled = cancelled.load(ordering: .relaxed)
                #expect(wasCancelled, "the handler was not cancelled after the client reset")
            }
        }

        /// 16 MB does not fit in the socket buffers: the server must meet EAGAIN, keep the rest, wait
        /// for writability and finish the response in order, with the connection still usable.
        @Test func largeResponseToASlowReaderArrivesIntact() async throws {
            let body = (0..<16_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 11) }
            var router = testRouter()
            router.get("/large") { _ in HTTPResponse(status: 200, body: body) }
            let (large, after) = try await withServer(handler: router.handler()) { port in
                try await blocking { () -> (TestResponse, TestResponse) in
                    let client = try RawClient(port: port)
                    try client.send("GET /large HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                    Thread.sleep(forTimeInterval: 0.3)
                    return (try client.readResponse(), try client.readResponse())
                }
            }
            #expect(large.status == 200)
            #expect(large.body.count == body.count)
            #expect(large.body == body)
            #expect(after.text == "hello")
        }

        /// A client that stops reading is cut after `writeIdle` instead of holding the server's
        /// buffered response forever.
        @Test func clientThatNeverReadsIsCutAfterWriteIdle() async throws {
            let size = 64_000_000
            var router = testRouter()
            router.get("/large") { _ in HTTPResponse(status: 200, body: [UInt8](repeating: 0x61, count: size)) }
            var configuration = Server.Configuration.test()
            configuration.timeouts.writeIdle = .seconds(1)
            let received = try await withServer(configuration, handler: router.handler()) { port in
                try await blocking { () -> Int in
                    let client = try RawClient(port: port)
                    try client.send("GET /large HTTP/1.1\r\nHost: x\r\n\r\n")
                    Thread.sleep(forTimeInterval: 2.5)
                    var total = 0
                    var chunk = [UInt8](repeating: 0, count: 1 << 20)
                    while true {
                        let n = chunk.withUnsafeMutableBytes { recv(client.fd, $0.baseAddress, $0.count, 0) }
                        if n > 0 { total += n; continue }
                        if n < 0 && errno == EINTR { continue }
                        return total  // EOF or reset: the server gave up
                    }
                }
            }
            #expect(received > 0)
            #expect(received < size, "the whole response arrived although the client did not read for 2.5 s")
        }

        @Test func accessLogHasFieldsButNoHeaderValues() async throws {
            let handler = CapturingLogHandler()
            let logger = Logger(label: "access") { _ in handler }
            _ = try await withServer(logger: logger, handler: testRouter().handler()) { port in
                try await blocking {
                    try request(
                        port: port,
                        "GET /path/x?token=querysecret HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer headersecret\r\nX-Request-Id: rid-1\r\n\r\n")
                }
            }
            let records = handler.records.withLock { $0 }
            let access = try #require(records.first { $0.metadata["request_id"] == "rid-1" })
            #expect(access.level == .info)
            #expect(access.metadata["method"] == "GET")
            #expect(access.metadata["path"] == "/path/x")
            #expect(access.metadata["status"] == "200")
            #expect(Int(access.metadata["bytes"] ?? "") ?? 0 > 0)
            #expect(access.metadata["duration_ms"] != nil)
            #expect(access.metadata["remote"]?.hasPrefix("127.0.0.1:") == true)
            let everything = records.map { "\($0.message) \($0.metadata)" }.joined()
            #expect(!everything.contains("headersecret"))
            #expect(!everything.contains("querysecret"))
        }
    }
}
