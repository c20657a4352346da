import Foundation

/// Base64 image data as clients send it: the standard alphabet (RFC 4648 §4) or the URL-safe one
/// (§5, `-` and `_`), with or without `=` padding, optionally as a `data:` URI (RFC 2397) such as
/// `data:image/jpeg;base64,...` (what a browser's FileReader gives). Whitespace is ignored.
enum ImageBase64 {
    static func decode(_ text: String, field: String) throws(ClassifyError) -> [UInt8] {
        var payload = Substring(text)
        if payload.prefix(5).lowercased() == "data:" {  // URI schemes are case-insensitive
            guard let comma = payload.firstIndex(of: ",") else {
                throw .invalidImage("\(field) is a data: URI without a comma before its data")
            }
            let parameters = payload[payload.index(payload.startIndex, offsetBy: 5)..<comma]
            guard parameters.split(separator: ";").contains(where: { $0.lowercased() == "base64" }) else {
                throw .invalidImage("\(field) is a data: URI that is not base64-encoded (add ;base64)")
            }
            payload = payload[payload.index(after: comma)...]
        }
        var characters = [UInt8]()
        characters.reserveCapacity(payload.utf8.count)
        for c in payload.utf8 {
            switch c {
            case UInt8(ascii: "-"): characters.append(UInt8(ascii: "+"))
            case UInt8(ascii: "_"): characters.append(UInt8(ascii: "/"))
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), UInt8(ascii: "\n"): continue
            default: characters.append(c)
            }
        }
        while characters.count % 4 != 0 { characters.append(UInt8(ascii: "=")) }
        guard let data = Data(base64Encoded: Data(characters)), !data.isEmpty else {
            throw .invalidImage("\(field) is not valid base64 (standard or URL-safe alphabet, optionally a data: URI)")
        }
        return [UInt8](data)
    }
}
