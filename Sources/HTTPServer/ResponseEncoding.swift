/// Serialises response heads. The server owns framing: handler-set `Content-Length`,
/// `Transfer-Encoding` and `Connection` fields are dropped and recomputed, so a handler cannot
/// desynchronise the connection.
enum ResponseEncoding {
    enum Framing {
        /// Fixed body of this many bytes (for HEAD: the length the GET body would have).
        case length(Int)
        case chunked
        /// HTTP/1.0 stream: the body ends when the connection closes.
        case untilClose
        /// 1xx, 204, 304: no body and no length (RFC 9110 §8.6).
        case none
    }

    static func head(status: Int, headers: HTTPHeaders, framing: Framing, close: Bool, keepAliveHTTP10: Bool, date: String) -> [UInt8] {
        // Appended as bytes into one reserved array: this runs once per response.
        var out: [UInt8] = []
        out.reserveCapacity(160)
        func line(_ name: String, _ value: String) {
            out.append(contentsOf: name.utf8)
            out.append(contentsOf: ": ".utf8)
            out.append(contentsOf: value.utf8)
            out.append(contentsOf: "\r\n".utf8)
        }
        out.append(contentsOf: "HTTP/1.1 ".utf8)
        out.append(contentsOf: String(status).utf8)
        out.append(UInt8(ascii: " "))
        out.append(contentsOf: reasonPhrase(status).utf8)
        out.append(contentsOf: "\r\n".utf8)
        var hasDate = false
        for (name, value) in headers {
            if asciiCaseInsensitiveEquals(name, "Content-Length") || asciiCaseInsensitiveEquals(name, "Transfer-Encoding")
                || asciiCaseInsensitiveEquals(name, "Connection")
            {
                continue
            }
            // A CR or LF in a handler-provided field would split the response (header injection).
            if !isSafeFieldName(name) || value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) { continue }
            if asciiCaseInsensitiveEquals(name, "Date") { hasDate = true }
            line(name, value)
        }
        if !hasDate { line("Date", date) }
        switch framing {
        case .length(let n): line("Content-Length", String(n))
        case .chunked: line("Transfer-Encoding", "chunked")
        case .untilClose, .none: break
        }
        if close {
            line("Connection", "close")
        } else if keepAliveHTTP10 {
            line("Connection", "keep-alive")
        }
        out.append(contentsOf: "\r\n".utf8)
        return out
    }

    static func statusHasNoBody(_ status: Int) -> Bool {
        (100..<200).contains(status) || status == 204 || status == 304
    }

    private static func isSafeFieldName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy(isTokenByte)
    }

    static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 101: "Switching Protocols"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 206: "Partial Content"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 303: "See Other"
        case 304: "Not Modified"
        case 307: "Temporary Redirect"
        case 308: "Permanent Redirect"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 406: "Not Acceptable"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 410: "Gone"
        case 411: "Length Required"
        case 412: "Precondition Failed"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 416: "Range Not Satisfiable"
        case 417: "Expectation Failed"
        case 422: "Unprocessable Content"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        default: "Status \(status)"
        }
    }
}
