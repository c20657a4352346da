/// A minimal multipart/form-data reader (RFC 7578): splits a body on its boundary and reads each
/// part's name, filename and content type from its headers.
public struct MultipartPart: Sendable {
    public var name: String
    public var filename: String?
    public var contentType: String?
    public var body: [UInt8]
}

public enum Multipart {
    /// The boundary parameter of a `multipart/form-data; boundary=...` content type.
    public static func boundary(from contentType: String) -> String? {
        for param in contentType.split(separator: ";").dropFirst() {
            let kv = param.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if kv.count == 2, kv[0].lowercased() == "boundary" {
                return kv[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            }
        }
        return nil
    }

    public static func parse(_ body: [UInt8], boundary: String) throws(APIError) -> [MultipartPart] {
        let delimiter = Array(("--" + boundary).utf8)
        var positions: [Int] = []
        var i = 0
        while let p = find(delimiter, in: body, from: i) {
            positions.append(p)
            i = p + delimiter.count
        }
        guard positions.count >= 2 else { throw .badRequest("multipart body has no parts delimited by its boundary") }
        var parts: [MultipartPart] = []
        for (a, b) in zip(positions, positions.dropFirst()) {
            var start = a + delimiter.count
            // The line after the delimiter ends with CRLF; "--" marks the closing delimiter.
            if start + 1 < body.count && body[start] == UInt8(ascii: "-") && body[start + 1] == UInt8(ascii: "-") { break }
            while start < body.count && (body[start] == 13 || body[start] == 10) { start += 1; if body[start - 1] == 10 { break } }
            guard let headerEnd = find([13, 10, 13, 10], in: body, from: start), headerEnd < b else {
                throw .badRequest("multipart part without a header section")
            }
            let headerText = String(decoding: body[start..<headerEnd], as: UTF8.self)
            var end = b
            // The CRLF before the next delimiter belongs to the delimiter.
            if end >= 2 && body[end - 2] == 13 && body[end - 1] == 10 { end -= 2 }
            var part = MultipartPart(name: "", filename: nil, contentType: nil, body: Array(body[(headerEnd + 4)..<max(headerEnd + 4, end)]))
            for line in headerText.split(separator: "\r\n") {
                let kv = line.split(separator: ":", maxSplits: 1)
                guard kv.count == 2 else { continue }
                let key = kv[0].trimmingCharacters(in: .whitespaces).lowercased()
                let value = kv[1].trimmingCharacters(in: .whitespaces)
                if key == "content-type" { part.contentType = value }
                if key == "content-disposition" {
                    for param in value.split(separator: ";").dropFirst() {
                        let p = param.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                        guard p.count == 2 else { continue }
                        let v = p[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                        if p[0] == "name" { part.name = v }
                        if p[0] == "filename" { part.filename = v }
                    }
                }
            }
            parts.append(part)
        }
        return parts
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
        let first = needle[0]
        var i = start
        while i <= haystack.count - needle.count {
            if haystack[i] == first {
                var j = 1
                while j < needle.count && haystack[i + j] == needle[j] { j += 1 }
                if j == needle.count { return i }
            }
            i += 1
        }
        return nil
    }
}

import Foundation
