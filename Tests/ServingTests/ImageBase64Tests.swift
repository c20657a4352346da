import Foundation
import Testing

@testable import Serving

/// Base64 as clients send it: standard and URL-safe alphabets, padded or not, data: URIs.
@Suite struct ImageBase64Tests {
    // Bytes whose standard encoding has '+' and '/', and which need padding.
    let bytes: [UInt8] = [0xFB, 0xEF, 0xFF, 0x00, 0x3E, 0x3F, 0x7F]

    @Test func everyFormDecodesToTheSameBytes() throws {
        let standard = Data(bytes).base64EncodedString()
        #expect(standard.contains("+") || standard.contains("/"))
        let urlSafe = standard.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        let unpadded = urlSafe.trimmingCharacters(in: CharacterSet(charactersIn: "="))
        for form in [
            standard, urlSafe, unpadded, "data:image/jpeg;base64," + standard, "data:;base64," + unpadded,
            "DATA:image/png;charset=x;BASE64," + standard, String(standard.prefix(4)) + "\n " + standard.dropFirst(4),
        ] {
            #expect(try ImageBase64.decode(form, field: "b64") == bytes, "\(form)")
        }
    }

    @Test(arguments: ["data:image/png,plain", "data:image/png;base64", "not*base64!", "", "data:;base64,"])
    func badFormsAreRefusedWithTheRealProblem(_ text: String) {
        #expect(throws: ClassifyError.self) { try ImageBase64.decode(text, field: "b64") }
    }
}
