import Foundation
import Testing

@testable import HTTPServer

extension HTTPServerTests {
    @Suite struct StaticFileServing {
        /// base/Package.swift and base/secret.txt outside the root; base/root served.
        static func makeSite() throws -> (base: URL, root: URL) {
            let base = FileManager.default.temporaryDirectory.appendingPathComponent("http-static-\(UUID().uuidString)")
            let root = base.appendingPathComponent("root")
            try FileManager.default.createDirectory(at: root.appendingPathComponent("sub"), withIntermediateDirectories: true)
            try "<h1>home</h1>".write(to: root.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
            try "body{}".write(to: root.appendingPathComponent("style.css"), atomically: true, encoding: .utf8)
            try "{}".write(to: root.appendingPathComponent("data.json"), atomically: true, encoding: .utf8)
            try "console.log(1)".write(to: root.appendingPathComponent("app.js"), atomically: true, encoding: .utf8)
            try "<p>sub</p>".write(to: root.appendingPathComponent("sub/index.html"), atomically: true, encoding: .utf8)
            try "outside".write(to: base.appendingPathComponent("Package.swift"), atomically: true, encoding: .utf8)
            try "outside".write(to: base.appendingPathComponent("secret.txt"), atomically: true, encoding: .utf8)
            try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("passwd").path, withDestinationPath: "/etc/passwd")
            try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("up").path, withDestinationPath: base.path)
            try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("home.html").path, withDestinationPath: "index.html")
            return (base, root)
        }

        static func router(root: URL) -> Router {
            var router = testRouter()
            router.fallback(StaticFiles(root: root.path).handler())
            return router
        }

        @Test func servesFilesWithTypesAndValidators() async throws {
            let (base, root) = try Self.makeSite()
            defer { try? FileManager.default.removeItem(at: base) }
            try await withServer(handler: Self.router(root: root).handler()) { port in
                let results = try await blocking { () -> [String: TestResponse] in
                    var out: [String: TestResponse] = [:]
                    for path in ["/", "/style.css", "/data.json", "/app.js", "/sub/", "/sub", "/home.html", "/missing.txt"] {
                        out[path] = try request(port: port, "GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n")
                    }
                    out["HEAD /style.css"] = try request(port: port, "HEAD /style.css HTTP/1.1\r\nHost: x\r\n\r\n", head: true)
                    return out
                }
                #expect(results["/"]?.text == "<h1>home</h1>")
                #expect(results["/"]?.header("Content-Type") == "text/html; charset=utf-8")
                #expect(results["/style.css"]?.header("Content-Type") == "text/css; charset=utf-8")
                #expect(results["/data.json"]?.header("Content-Type") == "application/json")
                #expect(results["/app.js"]?.header("Content-Type") == "text/javascript; charset=utf-8")
                #expect(results["/sub/"]?.text == "<p>sub</p>")
                #expect(results["/sub"]?.text == "<p>sub</p>")
                #expect(results["/home.html"]?.text == "<h1>home</h1>", "a symlink inside the root is fine")
                #expect(results["/missing.txt"]?.status == 404)
                #expect(results["HEAD /style.css"]?.header("Content-Length") == "6")

                let css = try #require(results["/style.css"])
                let etag = try #require(css.header("ETag"))
                let lastModified = try #require(css.header("Last-Modified"))
                let (byTag, byDate, changedTag) = try await blocking { () -> (TestResponse, TestResponse, TestResponse) in
                    (
                        try request(port: port, "GET /style.css HTTP/1.1\r\nHost: x\r\nIf-None-Match: \(etag)\r\n\r\n"),
                        try request(port: port, "GET /style.css HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: \(lastModified)\r\n\r\n"),
                        try request(port: port, "GET /style.css HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"other\"\r\n\r\n")
                    )
                }
                #expect(byTag.status == 304)
                #expect(byTag.body.isEmpty)
                #expect(byTag.header("ETag") == etag)
                #expect(byDate.status == 304)
                #expect(changedTag.status == 200)
            }
        }

        @Test func traversalAttemptsAre404() async throws {
            let (base, root) = try Self.makeSite()
            defer { try? FileManager.default.removeItem(at: base) }
            let attempts = [
                "/../Package.swift", "/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E/secret.txt", "/sub/../../secret.txt",
                "/%2e%2e%2fsecret.txt", "/sub/..%2f..%2fsecret.txt", "/.%2e/secret.txt", "/passwd", "/up/secret.txt",
                "/index.html%00.txt", "/%00", "/..", "/%2e%2e",
            ]
            try await withServer(handler: Self.router(root: root).handler()) { port in
                let responses = try await blocking {
                    try attempts.map { try request(port: port, "GET \($0) HTTP/1.1\r\nHost: x\r\n\r\n") }
                }
                for (path, response) in zip(attempts, responses) {
                    #expect(response.status == 404, "\(path) -> \(response.status)")
                    #expect(!response.text.contains("outside") && !response.text.contains("root:"), "\(path) leaked")
                }
            }
        }

        @Test func onlyGetAndHead() {
            let response = StaticFiles(root: "/tmp").serve(HTTPRequest(method: "POST", target: "/x"))
            #expect(response.status == 405)
            #expect(response.headers["Allow"] == "GET, HEAD")
        }
    }
}
