import Foundation

/// What a handler returns. The server adds `Date`, `Content-Length` (or chunked framing for
/// streams) and `Connection`; any such fields set here are replaced.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: Body

    public enum Body: Sendable {
        case bytes([UInt8])
        /// Chunked transfer coding; the closure writes chunks and returns when done (or throws).
        /// It runs only when the response's turn to be sent comes (pipelined responses stay ordered).
        case stream(@Sendable (ResponseBodyWriter) async throws -> Void)
    }

    public init(status: Int = 200, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = .bytes(body)
    }

    /// A JSON encoder with keys in sorted order, so the same object always serialises to the same
    /// bytes (diffable, cacheable, ETag-able) whatever the dictionary's hash seed.
    public static func stableJSONEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// `object` as JSON with `Content-Type: application/json`; an encoding failure becomes a 500.
    public static func json(_ status: Int = 200, _ object: some Encodable, encoder: JSONEncoder = stableJSONEncoder()) -> HTTPResponse {
        do {
            let data = try encoder.encode(object)
            return HTTPResponse(status: status, headers: ["Content-Type": "application/json"], body: Array(data))
        } catch {
            return .error(500, code: "internal", message: "response could not be encoded")
        }
    }

    /// `object` as JSON with status 200 (Swift cannot skip the defaulted status above positionally).
    public static func json(_ object: some Encodable, encoder: JSONEncoder = stableJSONEncoder()) -> HTTPResponse {
        json(200, object, encoder: encoder)
    }

    /// UTF-8 text with `Content-Type: text/plain; charset=utf-8`.
    public static func text(_ status: Int, _ text: String) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": "text/plain; charset=utf-8"], body: Array(text.utf8))
    }

    /// A chunked response whose body `body` writes piece by piece.
    public static func stream(
        status: Int = 200,
        headers: HTTPHeaders,
        _ body: @escaping @Sendable (ResponseBodyWriter) async throws -> Void
    ) -> HTTPResponse {
        var response = HTTPResponse(status: status, headers: headers)
        response.body = .stream(body)
        return response
    }

    /// A Server-Sent Events stream (`text/event-stream`, `Cache-Control: no-cache`); write events
    /// with `ResponseBodyWriter.writeEvent`.
    public static func serverSentEvents(
        headers: HTTPHeaders = .init(),
        _ body: @escaping @Sendable (ResponseBodyWriter) async throws -> Void
    ) -> HTTPResponse {
        var headers = headers
        headers.set("Content-Type", "text/event-stream")
        headers.set("Cache-Control", "no-cache")
        // Tells nginx-style proxies not to buffer the stream.
        headers.set("X-Accel-Buffering", "no")
        return .stream(status: 200, headers: headers, body)
    }

    /// The server's error shape: `{"error": {"code": ..., "message": ...}}`.
    public static func error(_ status: Int, code: String, message: String, headers: HTTPHeaders = HTTPHeaders()) -> HTTPResponse {
        var headers = headers
        headers.set("Content-Type", "application/json")
        let body = "{\"error\":{\"code\":\"" + jsonQuoted(code) + "\",\"message\":\"" + jsonQuoted(message) + "\"}}"
        return HTTPResponse(status: status, headers: headers, body: Array(body.utf8))
    }
}

/// Writes the body of a streaming response. Each `write` is one chunk on the wire.
public struct ResponseBodyWriter: Sendable {
    private let sink: @Sendable ([UInt8]) async throws -> Void

    /// `sink` receives each non-empty chunk's bytes; the server's sink frames them, suspends while
    /// the socket cannot take more, and throws `ClientDisconnected` once the client is gone.
    /// Public so handlers can be tested without a socket.
    public init(_ sink: @escaping @Sendable ([UInt8]) async throws -> Void) {
        self.sink = sink
    }

    /// Sends one chunk; suspends while the socket's send buffer is full (backpressure); throws if
    /// the client went away. Empty input is a no-op (an empty chunk would end the body).
    public func write(_ bytes: [UInt8]) async throws {
        guard !bytes.isEmpty else { return }
        try await sink(bytes)
    }

    public func write(_ text: String) async throws {
        try await write(Array(text.utf8))
    }

    /// One Server-Sent Event. Multi-line `data` becomes several `data:` lines; CR/LF are removed
    /// from `id` and `event` so that they cannot inject fields.
    public func writeEvent(id: String? = nil, event: String? = nil, data: String) async throws {
        var frame = ""
        if let id { frame += "id: \(singleLine(id))\n" }
        if let event { frame += "event: \(singleLine(event))\n" }
        let normalized = data.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        for line in normalized.split(separator: "\n", omittingEmptySubsequences: false) {
            frame += "data: \(line)\n"
        }
        frame += "\n"
        try await write(frame)
    }

    private func singleLine(_ s: String) -> String {
        String(s.unicodeScalars.filter { $0 != "\r" && $0 != "\n" && $0 != "\0" })
    }
}

/// Thrown by `ResponseBodyWriter` once the client has disconnected (or the connection was cut).
public struct ClientDisconnected: Error, Sendable, CustomStringConvertible {
    public init() {}
    public var description: String { "client disconnected" }
}

/// JSON string contents (without the quotes).
func jsonQuoted(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out
}
