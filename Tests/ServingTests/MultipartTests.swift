import Foundation
import Testing

@testable import Serving

/// RFC 2046 §5.1.1: only CRLF "--" boundary (then "--", or padding and CRLF) delimits a part.
@Suite struct MultipartTests {
    func body(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test func partsAndFields() throws {
        let b = body(
            "--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\nPNGDATA\r\n"
                + "--XyZ\r\nContent-Disposition: form-data; name=\"timesteps\"\r\n\r\n8\r\n--XyZ--\r\n")
        let parts = try Multipart.parse(b, boundary: "XyZ")
        #expect(parts.count == 2)
        #expect(parts[0].name == "image" && parts[0].filename == "a.png" && parts[0].contentType == "image/png")
        #expect(parts[0].body == body("PNGDATA"))
        #expect(parts[1].name == "timesteps" && parts[1].body == body("8"))
    }

    /// The fault: data containing "--boundary" without a CRLF before it was cut there (a 400).
    @Test(arguments: ["abc--XyZdef", "--XyZ at the start", "x\n--XyZ\ny", "x\r\n--XyZnot-a-delimiter", "\r\n--XyZ-"])
    func boundaryTextInsideDataIsData(_ data: String) throws {
        let b = body("--XyZ\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\n\(data)\r\n--XyZ--")
        let parts = try Multipart.parse(b, boundary: "XyZ")
        #expect(parts.count == 1)
        #expect(parts[0].body == body(data))
    }

    @Test func preambleEpilogueAndPaddingAreAllowed() throws {
        let b = body(
            "preamble text\r\n--XyZ  \r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nD1\r\n--XyZ\t\r\n"
                + "Content-Disposition: form-data; name=\"image\"\r\n\r\nD2\r\n--XyZ--\r\nepilogue")
        let parts = try Multipart.parse(b, boundary: "XyZ")
        #expect(parts.map(\.body) == [body("D1"), body("D2")])
    }

    @Test(arguments: ["no boundary here", "--XyZ\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nunterminated"])
    func malformedBodiesAreBadRequests(_ text: String) {
        #expect(throws: RequestError.self) { try Multipart.parse(body(text), boundary: "XyZ") }
    }
}
