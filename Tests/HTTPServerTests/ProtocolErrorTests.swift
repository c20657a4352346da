import Foundation
import Testing

@testable import HTTPServer

/// Requests the server must refuse, each followed by `Connection: close` and an actual close.
extension HTTPServerTests {
    @Suite struct ProtocolErrors {
        /// Sends `raw`, expects `status` with the JSON error `code`, then the server closing.
        static func expectRefusal(
            _ raw: String, status: Int, code: String, configuration: Server.Configuration = .test(), sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            let response = try await withServer(configuration, handler: testRouter().handler()) { port in
                try await blocking { () -> (TestResponse, Bool) in
                    let client = try RawClient(port: port)
                    try client.send(raw)
                    let response = try client.readResponse()
                    return (response, client.isClosedByServer())
                }
            }
            #expect(response.0.status == status, "\(raw.debugDescription)", sourceLocation: sourceLocation)
            #expect(response.0.header("Connection") == "close", sourceLocation: sourceLocation)
            #expect(response.0.header("Content-Type") == "application/json", sourceLocation: sourceLocation)
            #expect(response.0.text.contains("\"code\":\"\(code)\""), "\(response.0.text)", sourceLocation: sourceLocation)
            #expect(response.1, "server kept the connection open", sourceLocation: sourceLocation)
        }

        @Test(arguments: [
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
            "GET /hello\r\n\r\n",
            "GET  /hello HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /hello HTTP/1.1 extra\r\nHost: x\r\n\r\n",
            "GET /hel lo HTTP/1.1\r\nHost: x\r\n\r\n",
            "G(T /hello HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /hello HTTP/1.1\r\nHost : x\r\n\r\n",
            "GET /hello HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n",
            "GET /hello HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
            "GET /hello HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n",
            "GET /hello HTTP/1.1\r\nHost: x\rX-A: 1\r\n\r\n",
            "GET /hello HTTP/1.1\r\nHost: x\r\nX-A: a\u{01}b\r\n\r\n",
            "GET /hello HTTP/1.1\r\n\r\n",
            "GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
            "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ])
        func badRequests(_ raw: String) async throws {
            try await Self.expectRefusal(raw, status: 400, code: "bad_request")
        }

        @Test func unknownTransferCodingIs501() async throws {
            try await Self.expectRefusal(
                "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", status: 501, code: "not_implemented")
        }

        @Test func declaredBodyOverLimitIs413() async throws {
            let configuration = Server.Configuration.test(limits: .init(maxBodyBytes: 1024))
            try await Self.expectRefusal(
                "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n", status: 413, code: "payload_too_large", configuration: configuration
            )
            let chunked =
                "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n" + String(repeating: "a", count: 1024)
                + "\r\n1\r\nb\r\n0\r\n\r\n"
            try await Self.expectRefusal(chunked, status: 413, code: "payload_too_large", configuration: configuration)
        }

        @Test func expectContinueOverLimitIs413WithoutContinue() async throws {
            let configuration = Server.Configuration.test(limits: .init(maxBodyBytes: 1024))
            let (response, closed) = try await withServer(configuration, handler: testRouter().handler()) { port in
                try await blocking { () -> (TestResponse, Bool) in
                    let client = try RawClient(port: port)
                    try client.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
                    let response = try client.readResponse(skipInterim: false)
                    return (response, client.isClosedByServer())
                }
            }
            #expect(response.status == 413)
            #expect(response.text.contains("limit of 1024 bytes"), "\(response.text)")
            #expect(response.header("Connection") == "close")
            #expect(closed)
        }

        @Test func expectContinueWithinLimitGetsInterimResponse() async throws {
            let response = try await withServer(handler: testRouter().handler()) { port in
                try await blocking { () -> TestResponse in
                    let client = try RawClient(port: port)
                    try client.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
                    let interim = try client.readHead()
                    guard interim.status == 100 else { throw TestError.failure("expected 100, got \(interim.status)") }
                    try client.send("hello")
                    return try client.readResponse()
                }
            }
            #expect(response.status == 200)
            #expect(response.text == "hello")
        }

        @Test func oversizedHeaderSectionIs431() async throws {
            let configuration = Server.Configuration.test(limits: .init(maxHeaderBytes: 4096))
            let big = "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "v", count: 5000) + "\r\n\r\n"
            try await Self.expectRefusal(big, status: 431, code: "header_too_large", configuration: configuration)
            // Never terminated: the limit applies before the end of the section is seen.
            try await Self.expectRefusal(
                "GET /hello HTTP/1.1\r\nX-Big: " + String(repeating: "v", count: 5000), status: 431, code: "header_too_large",
                configuration: configuration)
        }

        @Test func tooManyHeadersIs431() async throws {
            let fields = (0..<101).map { "X-F\($0): v\r\n" }.joined()
            try await Self.expectRefusal("GET /hello HTTP/1.1\r\nHost: x\r\n" + fields + "\r\n", status: 431, code: "header_too_large")
        }

        @Test func headerSectionHasATotalDeadline() async throws {
            // One byte every 200 ms keeps the connection busy but must not extend the 1 s deadline.
            let configuration = Server.Configuration.test(headerRead: .seconds(1))
            let (response, elapsed) = try await withServer(configuration, handler: testRouter().handler()) { port in
                try await blocking { () -> (TestResponse, Double) in
                    let client = try RawClient(port: port)
                    let start = Date()
                    let header = Array("GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: " + String(repeating: "s", count: 100))
                    var i = 0
                    while !client.waitReadable(0.2) && Date().timeIntervalSince(start) < 4 {
                        client.trySend(String(header[i % header.count]))
                        i += 1
                    }
                    return (try client.readResponse(), Date().timeIntervalSince(start))
                }
            }
            #expect(response.status == 408)
            #expect(response.text.contains("request_timeout"))
            #expect(elapsed > 0.8 && elapsed < 2.0, "408 after \(elapsed) s")
        }

        @Test func stalledBodyIs408() async throws {
            let configuration = Server.Configuration.test(bodyIdle: .seconds(1))
            let (response, elapsed) = try await withServer(configuration, handler: testRouter().handler()) { port in
                try await blocking { () -> (TestResponse, Double) in
                    let client = try RawClient(port: port)
                    let start = Date()
                    try client.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
                    return (try client.readResponse(), Date().timeIntervalSince(start))
                }
            }
            #expect(response.status == 408)
            #expect(elapsed > 0.8 && elapsed < 2.0, "408 after \(elapsed) s")
        }

        @Test func connectionsOverTheLimitGet503() async throws {
            let configuration = Server.Configuration.test(limits: .init(maxConnections: 2))
            let (third, stillServed) = try await withServer(configuration, handler: testRouter().handler()) { port in
                try await blocking { () -> (TestResponse, Int) in
                    let a = try RawClient(port: port), b = try RawClient(port: port)
                    for client in [a, b] {
                        try client.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                        _ = try client.readResponse()
                    }
                    let c = try RawClient(port: port)
                    try c.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                    let refused = try c.readResponse()
                    try a.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                    return (refused, try a.readResponse().status)
                }
            }
            #expect(third.status == 503)
            #expect(third.text.contains("service_unavailable"))
            #expect(stillServed == 200)
        }
    }
}
