import Foundation
import HTTPServer
import Imaging

/// Why a classify call was refused after its request parsed.
public enum ClassifyError: Error, Sendable {
    /// The model's default version is still warming up.
    case notReady(String)
    case tooManyImages(count: Int, limit: Int)
    /// An image is empty, over the pixel limit or does not decode (the message says which).
    case invalidImage(String)
    case deadlineExceeded(milliseconds: Int)
}

/// The parameters and images of one classify call, from any of the three body forms.
struct ClassifyRequest {
    var images: [[UInt8]] = []
    var parameters = ClassifyParameters()

    var trace: Bool { parameters.trace ?? false }

    /// Reads the body by its Content-Type, then parameters from the query string (the body's
    /// fields win when both give one).
    static func parse(_ request: HTTPRequest) throws -> ClassifyRequest {
        var r = ClassifyRequest()
        var fields: [String: String] = [:]
        for (k, v) in request.query where ClassifyParameters.names.contains(k) { fields[k] = v }
        let contentType = (request.headers["Content-Type"] ?? "").lowercased()
        let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        var fromBody = ClassifyParameters()
        switch mediaType {
        case "image/jpeg", "image/jpg", "image/png", "application/octet-stream":
            guard !request.body.isEmpty else { throw ClassifyError.invalidImage("the request body is empty: send the image bytes") }
            r.images = [request.body]
        case "multipart/form-data":
            guard let boundary = Multipart.boundary(from: request.headers["Content-Type"] ?? "") else {
                throw RequestError.badRequest("multipart/form-data without a boundary parameter")
            }
            for part in try Multipart.parse(request.body, boundary: boundary) {
                if part.name == "image" || part.name == "images" || part.name == "image[]" {
                    r.images.append(part.body)
                } else if ClassifyParameters.names.contains(part.name) {
                    fields[part.name] = String(decoding: part.body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                }
            }
            guard !r.images.isEmpty else { throw ClassifyError.invalidImage("multipart body has no part named 'image'") }
        case "application/json":
            let body = try JSONBody.decode(ClassifyJSONBody.self, from: request.body)
            guard !body.images.isEmpty else { throw RequestError.badRequest("JSON body needs \"images\": [{\"b64\": \"...\"}]") }
            for (i, item) in body.images.enumerated() {
                r.images.append(try ImageBase64.decode(item.b64, field: "images[\(i)].b64"))
            }
            fromBody = body.parameters
        case "":
            throw RequestError.unsupportedMediaType(
                "missing Content-Type: use image/jpeg, image/png, multipart/form-data or application/json")
        default:
            throw RequestError.unsupportedMediaType(
                "Content-Type \(mediaType) is not supported: use image/jpeg, image/png, multipart/form-data or application/json")
        }
        var p = try ClassifyParameters(text: fields)
        p.timesteps = fromBody.timesteps ?? p.timesteps
        p.topK = fromBody.topK ?? p.topK
        p.seed = fromBody.seed ?? p.seed
        p.trace = fromBody.trace ?? p.trace
        p.deadlineMs = fromBody.deadlineMs ?? p.deadlineMs
        p.adaptive = fromBody.adaptive ?? p.adaptive
        p.exitThreshold = fromBody.exitThreshold ?? p.exitThreshold
        try p.validate()
        r.parameters = p
        return r
    }
}

extension ClassifyParameters {
    static let names: Set<String> = ["timesteps", "top_k", "seed", "trace", "deadline_ms", "adaptive", "exit_threshold"]

    /// From query or form fields (text).
    init(text fields: [String: String]) throws(RequestError) {
        self.init()
        timesteps = try Self.integer(fields["timesteps"], "timesteps")
        topK = try Self.integer(fields["top_k"], "top_k")
        deadlineMs = try Self.integer(fields["deadline_ms"], "deadline_ms")
        if let s = fields["seed"] {
            guard let seed = UInt64(s) else { throw .invalidParameter("parameter 'seed' must be a non-negative integer") }
            self.seed = seed
        }
        trace = try Self.boolean(fields["trace"], "trace")
        adaptive = try Self.boolean(fields["adaptive"], "adaptive")
        if let s = fields["exit_threshold"] {
            guard let v = Double(s), v.isFinite else { throw .invalidParameter("parameter 'exit_threshold' must be a number") }
            exitThreshold = v
        }
    }

    static func boolean(_ text: String?, _ name: String) throws(RequestError) -> Bool? {
        guard let text else { return nil }
        switch text.lowercased() {
        case "true", "1", "yes": return true
        case "false", "0", "no", "": return false
        default: throw .invalidParameter("parameter '\(name)' must be true or false")
        }
    }

    /// Ranges: timesteps and top_k ≥ 1, deadline_ms in 1...3,600,000. The model's own maximum T
    /// is checked once the version is known.
    func validate() throws(RequestError) {
        try Self.check(timesteps, "timesteps", 1...Int.max)
        try Self.check(topK, "top_k", 1...Int.max)
        try Self.check(deadlineMs, "deadline_ms", 1...Self.maxDeadlineMs)
    }

    static func check(_ value: Int?, _ name: String, _ range: ClosedRange<Int>) throws(RequestError) {
        guard let value, !range.contains(value) else { return }
        throw .invalidParameter("parameter '\(name)' must be an integer \(describe(range)), got \(value)")
    }

    static func describe(_ range: ClosedRange<Int>) -> String {
        range.upperBound == Int.max ? "≥ \(range.lowerBound)" : "in \(range.lowerBound)...\(range.upperBound)"
    }

    static func integer(_ text: String?, _ name: String) throws(RequestError) -> Int? {
        guard let text else { return nil }
        guard let v = Int(text) else {
            throw .invalidParameter("parameter '\(name)' must be an integer, got '\(text.prefix(32))'")
        }
        return v
    }
}

/// Integer query parameters of the list endpoints.
func queryInteger(_ text: String?, _ name: String, min: Int) throws(RequestError) -> Int? {
    guard let value = try ClassifyParameters.integer(text, name) else { return nil }
    try ClassifyParameters.check(value, name, min...Int.max)
    return value
}
