import HTTPServer

/// An error answer: `{"error": {"code": "...", "message": "..."}}` with its status and headers.
public struct APIError: Error, Sendable {
    public var status: Int
    public var code: String
    public var message: String
    public var headers: [(String, String)] = []

    public init(_ status: Int, _ code: String, _ message: String, headers: [(String, String)] = []) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    struct Body: Encodable {
        struct Inner: Encodable { var code: String; var message: String }
        var error: Inner
    }

    public var response: HTTPResponse {
        var r = HTTPResponse.json(status, Body(error: .init(code: code, message: message)))
        for (k, v) in headers { r.headers.set(k, v) }
        return r
    }

    public static func badRequest(_ message: String, code: String = "bad_request") -> APIError { APIError(400, code, message) }
    public static func notFound(_ message: String) -> APIError { APIError(404, "not_found", message) }
    public static func conflict(_ message: String) -> APIError { APIError(409, "conflict", message) }
}
