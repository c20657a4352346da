import Foundation

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

    /// Splits `body` into its parts. Per RFC 2046 §5.1.1 a part ends only at CRLF "--" boundary,
    /// followed by "--" (the close delimiter) or optional spaces and CRLF; the first boundary may
    /// open the body without the CRLF. A "--boundary" inside a part's data that is not such a
    /// delimiter is data. The preamble and epilogue are ignored.
    public static func parse(_ body: [UInt8], boundary: String) throws(RequestError) -> [MultipartPart] {
        let dashBoundary = Array(("--" + boundary).utf8)
        let delimiter = [13, 10] + dashBoundary
        // The first boundary: at the very start, or after a preamble as a CRLF-led delimiter.
        var boundaryStart: Int
        if body.starts(with: dashBoundary), isDelimiterEnd(body, at: dashBoundary.count) {
            boundaryStart = 0
        } else if let p = findDelimiter(delimiter, in: body, from: 0) {
            boundaryStart = p + 2
        } else {
            throw .badRequest("multipart body has no parts delimited by its boundary")
        }
        var parts: [MultipartPart] = []
        while true {
            var start = boundaryStart + dashBoundary.count
            if start + 1 < body.count && body[start] == UInt8(ascii: "-") && body[start + 1] == UInt8(ascii: "-") { break }
            while start < body.count && (body[start] == 32 || body[start] == 9) { start += 1 }  // transport padding
            start += 2  // CRLF, checked by isDelimiterEnd
            guard let next = findDelimiter(delimiter, in: body, from: start) else {
                throw .badRequest("multipart body ends without its closing boundary")
            }
            parts.append(try part(body[start..<next]))
            boundaryStart = next + 2
        }
        guard !parts.isEmpty else { throw .badRequest("multipart body has no parts delimited by its boundary") }
        return parts
    }

    /// Whether a boundary occurrence ending at `index` is a delimiter: "--" or padding then CRLF.
    static func isDelimiterEnd(_ body: [UInt8], at index: Int) -> Bool {
        var k = index
        if k + 1 < body.count && body[k] == UInt8(ascii: "-") && body[k + 1] == UInt8(ascii: "-") { return true }
        while k < body.count && (body[k] == 32 || body[k] == 9) { k += 1 }
        return k + 1 < body.count && body[k] == 13 && body[k + 1] == 10
    }

    /// The next CRLF "--" boundary at or after `start` that is a delimiter (its CRLF's position).
    static func findDelimiter(_ delimiter: [UInt8], in body: [UInt8], from start: Int) -> Int? {
        var i = start
        while let p = find(delimiter, in: body, from: i) {
            if isDelimiterEnd(body, at: p + delimiter.count) { return p }
            i = p + 1
        }
        return nil
    }

    /// One part: headers up to the blank line, then the data.
    static func part(_ bytes: ArraySlice<UInt8>) throws(RequestError) -> MultipartPart {
        let data = Array(bytes)
        let headerEnd: Int
        let bodyStart: Int
        if data.starts(with: [13, 10]) {
            (headerEnd, bodyStart) = (0, 2)  // no header fields
        } else if let e = find([13, 10, 13, 10], in: data, from: 0) {
            (headerEnd, bodyStart) = (e, e + 4)
        } else {
            throw .badRequest("multipart part without a header section")
        }
        var part = MultipartPart(name: "", filename: nil, contentType: nil, body: Array(data[bodyStart...]))
        for line in String(decoding: data[..<headerEnd], as: UTF8.self).split(separator: "\r\n") {
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
        return part
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
