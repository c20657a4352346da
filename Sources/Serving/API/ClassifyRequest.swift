import Foundation
import HTTPServer
import Imaging

/// The parameters and images of one classify call, from any of the three body forms.
struct ClassifyRequest {
    var images: [[UInt8]] = []
    var timesteps: Int?
    var topK: Int?
    var seed: UInt64?
    var trace = false
    var deadlineMs: Int?

    static let parameterNames: Set<String> = ["timesteps", "top_k", "seed", "trace", "deadline_ms"]

    /// Reads the body by its Content-Type, then parameters from the query string (the body's
    /// fields win when both give one).
    static func parse(_ request: HTTPRequest) throws(APIError) -> ClassifyRequest {
        var r = ClassifyRequest()
        var fields: [String: String] = [:]
        for (k, v) in request.query where parameterNames.contains(k) { fields[k] = v }
        let contentType = (request.headers["Content-Type"] ?? "").lowercased()
        let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        switch mediaType {
        case "image/jpeg", "image/jpg", "image/png", "application/octet-stream":
            guard !request.body.isEmpty else { throw .badRequest("the request body is empty: send the image bytes", code: "invalid_image") }
            r.images = [request.body]
        case "multipart/form-data":
            guard let boundary = Multipart.boundary(from: request.headers["Content-Type"] ?? "") else {
                throw .badRequest("multipart/form-data without a boundary parameter")
            }
            for part in try Multipart.parse(request.body, boundary: boundary) {
                if part.name == "image" || part.name == "images" || part.name == "image[]" {
                    r.images.append(part.body)
                } else if parameterNames.contains(part.name) {
                    fields[part.name] = String(decoding: part.body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                }
            }
            guard !r.images.isEmpty else { throw .badRequest("multipart body has no part named 'image'", code: "invalid_image") }
        case "application/json":
            let object = try JSONValue.parseObject(request.body)
            guard let list = object["images"] as? [Any], !list.isEmpty else {
                throw .badRequest("JSON body needs \"images\": [{\"b64\": \"...\"}]")
            }
            for (i, item) in list.enumerated() {
                guard let entry = item as? [String: Any], let b64 = entry["b64"] as? String else {
                    throw .badRequest("images[\(i)] needs a \"b64\" string")
                }
                r.images.append(try ImageBase64.decode(b64, field: "images[\(i)].b64"))
            }
            for name in parameterNames {
                guard let v = object[name] else { continue }
                // `trace` takes a JSON boolean; the others take numbers (see JSONField).
                if name == "trace", let b = JSONField.bool(v) {
                    fields[name] = b ? "true" : "false"
                } else if name != "trace", !JSONField.isBoolean(v), let n = v as? NSNumber {
                    fields[name] = n.stringValue
                } else {
                    throw .badRequest("parameter '\(name)' must be a JSON \(name == "trace" ? "boolean" : "number")", code: "invalid_parameter")
                }
            }
        case "":
            throw APIError(415, "unsupported_media_type", "missing Content-Type: use image/jpeg, image/png, multipart/form-data or application/json")
        default:
            throw APIError(
                415, "unsupported_media_type",
                "Content-Type \(mediaType) is not supported: use image/jpeg, image/png, multipart/form-data or application/json")
        }
        r.timesteps = try integer(fields["timesteps"], "timesteps", min: 1)
        r.topK = try integer(fields["top_k"], "top_k", min: 1)
        r.deadlineMs = try integer(fields["deadline_ms"], "deadline_ms", min: 1, max: 3_600_000)
        if let s = fields["seed"] {
            guard let seed = UInt64(s) else { throw .badRequest("parameter 'seed' must be a non-negative integer", code: "invalid_parameter") }
            r.seed = seed
        }
        if let t = fields["trace"] {
            switch t.lowercased() {
            case "true", "1", "yes": r.trace = true
            case "false", "0", "no", "": r.trace = false
            default: throw .badRequest("parameter 'trace' must be true or false", code: "invalid_parameter")
            }
        }
        return r
    }

    static func integer(_ text: String?, _ name: String, min: Int, max: Int = Int.max) throws(APIError) -> Int? {
        guard let text else { return nil }
        guard let v = Int(text), v >= min, v <= max else {
            let range = max == Int.max ? "≥ \(min)" : "in \(min)...\(max)"
            throw .badRequest("parameter '\(name)' must be an integer \(range), got '\(text.prefix(32))'", code: "invalid_parameter")
        }
        return v
    }
}
