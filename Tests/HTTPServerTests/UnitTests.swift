import Foundation
import Synchronization
import Testing

@testable import HTTPServer

/// Socket-free checks of the parser, request helpers and router.
extension HTTPServerTests {
    @Suite struct Units {
        static let limits = HTTPParserLimits(maxHeaderBytes: 16384, maxHeaderCount: 100, maxBodyBytes: 1 << 20)

        static func parseAll(_ input: [UInt8], byteByByte: Bool = false) throws -> [HTTPRequest] {
            var parser = HTTPRequestParser(limits: limits)
            var requests: [HTTPRequest] = []
            let pieces: [[UInt8]] = byteByByte ? input.map { [$0] } : [input]
            for piece in pieces {
                parser.feed(piece)
                while let event = try parser.next() {
                    if case .request(let request) = event { requests.append(request) }
                }
            }
            return requests
        }

        @Test func chunkedWithExtensionsAndTrailers() throws {
            let raw =
                "POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4;name=value\r\nWiki\r\n5 ; x\r\npedia\r\n0\r\nChecksum: abc\r\n\r\n"
            for byteByByte in [false, true] {
                let requests = try Self.parseAll(Array(raw.utf8), byteByByte: byteByByte)
                #expect(requests.count == 1)
                #expect(String(decoding: requests[0].body, as: UTF8.self) == "Wikipedia")
            }
        }

        @Test func pipelinedByteByByteMatchesWhole() throws {
            let raw =
                "\r\nGET /a?x=1&y=a+b&x=2 HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /c%20d HTTP/1.0\r\n\r\n"
            let whole = try Self.parseAll(Array(raw.utf8))
            let split = try Self.parseAll(Array(raw.utf8), byteByByte: true)
            #expect(whole.map(\.target) == ["/a?x=1&y=a+b&x=2", "/b", "/c%20d"])
            #expect(split.map(\.target) == whole.map(\.target))
            #expect(whole[0].query == ["x": "2", "y": "a b"])
            #expect(whole[0].queryItems.map(\.value) == ["1", "a b", "2"])
            #expect(whole[1].body == Array("abc".utf8))
            #expect(whole[2].path == "/c d")
            #expect(whole[2].version == "HTTP/1.0")
            #expect(!whole[2].wantsKeepAlive)
        }

        @Test func bareLineFeedIsAcceptedBareCarriageReturnIsNot() throws {
            // RFC 9112 §2.2: a recipient MAY accept a lone LF as line terminator; a lone CR is invalid.
            let requests = try Self.parseAll(Array("GET / HTTP/1.1\nHost: x\n\n".utf8))
            #expect(requests.count == 1)
            #expect(throws: HTTPParseError.self) { try Self.parseAll(Array("GET / HTTP/1.1\rHost: x\r\n\r\n".utf8)) }
        }

        @Test func httpVersionsBeyondOneAreRefused() {
            #expect(throws: HTTPParseError(status: 505, code: "version_not_supported", message: "only HTTP/1.x is supported")) {
                try Self.parseAll(Array("GET / HTTP/2.0\r\nHost: x\r\n\r\n".utf8))
            }
        }

        @Test func targetSplitting() {
            func split(_ target: String) -> String {
                let (path, query) = splitTarget(target)
                return query.map { "\(path)|\($0)" } ?? "\(path)"
            }
            #expect(split("/a/b") == "/a/b")
            #expect(split("/a?x=1&y=2") == "/a|x=1&y=2")
            #expect(split("/a?x=?#frag") == "/a|x=?")
            #expect(split("/a#f?x") == "/a")
            #expect(split("/é/ü?q=ß") == "/é/ü|q=ß")
            #expect(split("/?") == "/|")
            #expect(split("http://host:8080/p?q") == "/p|q")
            #expect(split("http://host?q") == "/|q")
            #expect(split("*") == "*")
        }

        @Test func jsonResponsesHaveSortedKeys() throws {
            struct Item: Encodable { var zeta = 1; var alpha = "/a/b"; var mid = ["y": 2, "x": 1] }
            let response = HTTPResponse.json(Item())
            guard case .bytes(let body) = response.body else { throw TestError.failure("not a byte body") }
            #expect(String(decoding: body, as: UTF8.self) == #"{"alpha":"/a/b","mid":{"x":1,"y":2},"zeta":1}"#)
            #expect(response.headers["Content-Type"] == "application/json")
        }

        @Test func requestIDValidation() {
            #expect(HTTPRequest(target: "/", headers: ["X-Request-Id": "ok-1_2.3"]).requestID == "ok-1_2.3")
            #expect(HTTPRequest(target: "/", headers: ["X-Request-Id": "bad id"]).requestID != "bad id")
            #expect(HTTPRequest(target: "/", headers: ["X-Request-Id": String(repeating: "a", count: 65)]).requestID.count == 16)
        }

        @Test func headersAreCaseInsensitiveAndOrdered() {
            var headers = HTTPHeaders([("Set-Cookie", "a"), ("set-cookie", "b"), ("X", "1")])
            #expect(headers["SET-COOKIE"] == "a")
            #expect(headers.values("Set-Cookie") == ["a", "b"])
            headers.set("set-cookie", "c")
            #expect(headers.values("Set-Cookie") == ["c"])
            headers.remove("x")
            #expect(headers.count == 1)
        }

        @Test func routerParametersSpecificityAndHead() async {
            var router = Router()
            router.get("/v1/models/{name}/versions/{v}") { r in .text(200, "\(r.pathParameters["name"]!)@\(r.pathParameters["v"]!)") }
            router.get("/v1/models/latest/versions/{v}") { _ in .text(200, "latest") }
            router.post("/v1/models") { _ in .text(201, "created") }
            let text = { (method: String, target: String) async -> (Int, String) in
                let response = await router.handle(HTTPRequest(method: method, target: target))
                guard case .bytes(let body) = response.body else { return (response.status, "") }
                return (response.status, String(decoding: body, as: UTF8.self))
            }
            #expect(await text("GET", "/v1/models/a%2Fb/versions/3") == (200, "a/b@3"))
            #expect(await text("GET", "/v1/models/latest/versions/3") == (200, "latest"))
            #expect(await text("HEAD", "/v1/models/x/versions/1") == (200, "x@1"))
            #expect(await text("GET", "/v1/models").0 == 405)
            #expect(await router.handle(HTTPRequest(method: "GET", target: "/v1/models")).headers["Allow"] == "POST")
            #expect(await text("GET", "/nowhere").0 == 404)
        }

        @Test func serverSentEventFraming() async throws {
            let collected = Mutex<[UInt8]>([])
            let writer = ResponseBodyWriter { bytes in collected.withLock { $0 += bytes } }
            try await writer.writeEvent(id: "7\r\nevil: 1", event: "update", data: "line1\nline2")
            #expect(String(decoding: collected.withLock { $0 }, as: UTF8.self) == "id: 7evil: 1\nevent: update\ndata: line1\ndata: line2\n\n")
        }

        @Test func httpDateRoundTrip() {
            #expect(HTTPDate.format(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT")
            #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == 784111777)
            #expect(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT") == nil)
        }
    }
}
