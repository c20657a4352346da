import Foundation
import Testing

@testable import HTTPServer

/// Real-client checks with curl (run through Foundation.Process).
extension HTTPServerTests {
    @Suite struct Curl {
        static let curl = "/usr/bin/curl"

        @Test func keepAliveReusesOneConnection() async throws {
            try await withServer(handler: testRouter().handler()) { port in
                let url = "http://127.0.0.1:\(port)/hello"
                let result = try await blocking {
                    try runProcess(Self.curl, ["-sv", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{num_connects}\n", url, url])
                }
                #expect(result.status == 0)
                let connects = result.stdout.split(separator: "\n").compactMap { Int($0) }
                #expect(connects.count == 2)
                #expect(connects.reduce(0, +) == 1, "num_connects per transfer: \(connects)")
                #expect(result.stderr.contains("Re-using existing connection"))
            }
        }

        /// True when this machine can bind the IPv6 loopback (some containers have no IPv6 at all).
        static let ipv6Loopback: Bool = {
            let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_addr = in6addr_loopback
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            } == 0
        }()

        /// Bound to "::", the server answers over IPv6 and, dual-stack, over IPv4.
        @Test(.enabled(if: Curl.ipv6Loopback, "no IPv6 loopback on this machine"))
        func dualStackServesIPv6AndIPv4() async throws {
            var configuration = Server.Configuration.test()
            configuration.host = "::"
            try await withServer(configuration, handler: testRouter().handler()) { port in
                for url in ["http://[::1]:\(port)/hello", "http://127.0.0.1:\(port)/hello"] {
                    let result = try await blocking { try runProcess(Self.curl, ["-sg", url]) }
                    #expect(result.status == 0, "curl \(url)")
                    #expect(result.stdout == "hello", "curl \(url)")
                }
            }
        }

        @Test func twoMegabyteUploadWithExpectContinueIsFast() async throws {
            let payload = (0..<(2 * 1024 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 13) }
            let (input, output, directory) = try uploadFiles(payload)
            defer { try? FileManager.default.removeItem(at: directory) }
            try await withServer(handler: testRouter().handler()) { port in
                let result = try await blocking {
                    try runProcess(
                        Self.curl,
                        [
                            "-sv", "--data-binary", "@\(input.path)", "-H", "Content-Type: application/octet-stream",
                            "-o", output.path, "-w", "%{http_code}", "http://127.0.0.1:\(port)/echo",
                        ])
                }
                #expect(result.stdout == "200")
                // curl sends "Expect: 100-continue" for a body this size; without an immediate
                // 100 it would wait a full second before sending.
                #expect(result.stderr.contains("Expect: 100-continue"))
                #expect(result.stderr.contains("HTTP/1.1 100 Continue"))
                #expect(result.elapsed < 0.9, "upload took \(result.elapsed) s")
                #expect(try Data(contentsOf: output) == Data(payload))
            }
        }

        @Test func chunkedUploadIsEchoed() async throws {
            let payload = Array((0..<300_000).map { UInt8(truncatingIfNeeded: $0 % 251) })
            let (input, output, directory) = try uploadFiles(payload)
            defer { try? FileManager.default.removeItem(at: directory) }
            try await withServer(handler: testRouter().handler()) { port in
                let result = try await blocking {
                    try runProcess(
                        Self.curl,
                        [
                            "-sv", "-H", "Transfer-Encoding: chunked", "--data-binary", "@\(input.path)",
                            "-o", output.path, "-w", "%{http_code}", "http://127.0.0.1:\(port)/echo",
                        ])
                }
                #expect(result.stdout == "200")
                #expect(result.stderr.contains("Transfer-Encoding: chunked"))
                #expect(try Data(contentsOf: output) == Data(payload))
            }
        }

        @Test func streamingServerSentEvents() async throws {
            try await withServer(handler: testRouter().handler()) { port in
                let result = try await blocking {
                    try runProcess(Self.curl, ["-sN", "-D", "-", "http://127.0.0.1:\(port)/events"])
                }
                #expect(result.status == 0)
                let text = result.stdout
                #expect(text.contains("Transfer-Encoding: chunked"))
                #expect(text.contains("Content-Type: text/event-stream"))
                #expect(text.contains("Cache-Control: no-cache"))
                for i in 0..<3 {
                    #expect(text.contains("id: \(i)\nevent: tick\ndata: event \(i)\n\n"))
                }
            }
        }
    }
}

/// A temporary directory holding `payload` as in.bin, and the path curl writes the answer to.
func uploadFiles(_ payload: [UInt8]) throws -> (input: URL, output: URL, directory: URL) {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("http-upload-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let input = directory.appendingPathComponent("in.bin")
    try Data(payload).write(to: input)
    return (input, directory.appendingPathComponent("out.bin"), directory)
}
