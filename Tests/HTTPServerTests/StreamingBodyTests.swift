import Foundation
import Synchronization
import Testing

@testable import HTTPServer

/// Request bodies streamed to a handler (`Router.addStreaming`), with raw sockets.
extension HTTPServerTests {
    @Suite struct StreamingBodies {
        /// 40 MB: over the default 32 MiB buffered limit.
        static let bigSize = 40_000_000

        static func checksum(_ bytes: some Sequence<UInt8>, into sum: inout UInt64) {
            for b in bytes { sum = (sum &* 31) &+ UInt64(b) }
        }

        static func payload(_ size: Int) -> [UInt8] {
            (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 11) }
        }

        /// Routes: `/upload` streams (limit 64 MiB) and answers "bytes checksum chunks";
        /// `/early` streams but answers after the first chunk; `/small` streams with a 1000-byte limit.
        static func router() -> Router {
            var router = testRouter()
            router.addStreaming("POST", "/upload", maxBodyBytes: 64 << 20) { request in
                guard let stream = request.bodyStream, request.body.isEmpty else { return .text(500, "no stream") }
                var bytes = 0, chunks = 0
                var sum: UInt64 = 0
                for try await chunk in stream {
                    bytes += chunk.count
                    chunks += 1
                    checksum(chunk, into: &sum)
                }
                return .text(200, "\(bytes) \(sum) \(chunks)")
            }
            router.addStreaming("POST", "/early", maxBodyBytes: 64 << 20) { request in
                var iterator = request.bodyStream!.makeAsyncIterator()
                let first = try await iterator.next()
                return .text(200, "first \(first?.count ?? 0)")
            }
            router.addStreaming("POST", "/small", maxBodyBytes: 1000) { request in
                .text(200, "\(try await request.bodyStream!.collect().count)")
            }
            return router
        }

        static func withStreamingServer<T: Sendable>(_ body: (Int) async throws -> T) async throws -> T {
            let router = router()
            return try await withServer(streamingBody: { router.streamingLimit(method: $0, path: $1) }, handler: router.handler(), body)
        }

        @Test func routerReportsStreamingLimits() {
            let router = Self.router()
            #expect(router.streamingLimit(method: "POST", path: "/upload") == 64 << 20)
            #expect(router.streamingLimit(method: "POST", path: "/echo") == nil)
            #expect(router.streamingLimit(method: "GET", path: "/upload") == nil)
            #expect(router.streamingLimit(method: "POST", path: "/missing") == nil)
        }

        @Test func largeUploadArrivesInChunks() async throws {
            let data = Self.payload(Self.bigSize)
            var expected: UInt64 = 0
            Self.checksum(data, into: &expected)
            let response = try await Self.withStreamingServer { port in
                try await blocking { () -> TestResponse in
                    let client = try RawClient(port: port, timeout: 30)
                    try client.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: \(data.count)\r\n\r\n")
                    try client.send(data)
                    return try client.readResponse()
                }
            }
            #expect(response.status == 200)
            let parts = response.text.split(separator: " ")
            #expect(parts.count == 3)
            #expect(parts.first.map(String.init) == String(Self.bigSize))
            #expect(parts.dropFirst().first.map(String.init) == String(expected))
            #expect((parts.last.flatMap { Int($0) } ?? 0) > 10, "chunks: \(response.text)")
        }

        @Test func chunkedUploadAndKeepAlive() async throws {
            let data = Self.payload(3_000_000)
            var expected: UInt64 = 0
            Self.checksum(data, into: &expected)
            let (first, second) = try await Self.withStreamingServer { port in
                try await blocking { () -> (TestResponse, TestResponse) in
                    let client = try RawClient(port: port, timeout: 30)
                    try client.send("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n")
                    let interim = try client.readHead()
                    guard interim.status == 100 else { throw TestError.failure("expected 100, got \(interim.status)") }
                    var offset = 0
                    while offset < data.count {
                        let n = min(100_000, data.count - offset)
                        try client.send(String(n, radix: 16) + "\r\n")
                        try client.send(Array(data[offset..<offset + n]))
                        try client.send("\r\n")
                        offset += n
                    }
                    // The next request pipelined right behind the terminating chunk.
                    try client.send("0\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                    return (try client.readResponse(), try client.readResponse())
                }
            }
            #expect(first.status == 200)
            #expect(first.text.hasPrefix("\(data.count) \(expected) "), "\(first.text)")
            #expect(first.header("Connection") != "close")
            #expect(second.status == 200)
            #expect(second.text == "hello")
        }

        @Test func bufferedRouteStillRefusesLargeBody() async throws {
            let response = try await Self.withStreamingServer { port in
                try await blocking { () -> TestResponse in
                    let client = try RawClient(port: port)
                    try client.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: \(Self.bigSize)\r\n\r\n")
                    return try client.readResponse()
                }
            }
            #expect(response.status == 413)
        }

        @Test func streamingRouteOverItsLimitIs413() async throws {
            let (declared, chunked) = try await Self.withStreamingServer { port in
                try await blocking { () -> (TestResponse, TestResponse) in
                    let client = try RawClient(port: port)
                    try client.send("POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\nExpect: 100-continue\r\n\r\n")
                    let declared = try client.readResponse(skipInterim: false)
                    let other = try RawClient(port: port)
                    let body = String(repeating: "a", count: 800)
                    try other.send(
                        "POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n320\r\n\(body)\r\n320\r\n\(body)\r\n0\r\n\r\n")
                    return (declared, try other.readResponse())
                }
            }
            #expect(declared.status == 413)
            #expect(declared.text.contains("limit of 1000 bytes"), "\(declared.text)")
            #expect(chunked.status == 413)
        }

        @Test func smallStreamedBodyThenKeepAlive() async throws {
            let (first, second) = try await Self.withStreamingServer { port in
                try await blocking { () -> (TestResponse, TestResponse) in
                    let client = try RawClient(port: port)
                    try client.send("POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
                    let first = try client.readResponse()
                    try client.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
                    return (first, try client.readResponse())
                }
            }
            #expect(first.text == "5")
            #expect(second.text.hasPrefix("3 "))
        }

        @Test func handlerThatStopsReadingEarlyDoesNotHang() async throws {
            let (response, closed, after) = try await Self.withStreamingServer { port in
                try await blocking { () -> (TestResponse, Bool, TestResponse) in
                    let client = try RawClient(port: port, timeout: 10)
                    try client.send("POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: \(Self.bigSize)\r\n\r\n")
                    try client.send([UInt8](repeating: 1, count: 100_000))
                    let response = try client.readResponse()
                    let closed = client.isClosedByServer()
                    // The server is still fine for others.
                    let other = try RawClient(port: port)
                    try other.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                    return (response, closed, try other.readResponse())
                }
            }
            #expect(response.status == 200)
            #expect(response.text.hasPrefix("first "))
            #expect(response.header("Connection") == "close")
            #expect(closed)
            #expect(after.text == "hello")
        }
    }
}
