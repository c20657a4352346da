// Incremental HTTP/1.1 request parser (RFC 9112). Dependency-free (only HTTPTypes.swift) so the
// fuzzer can compile it standalone. It never trusts framing it cannot verify: every ambiguity that
// enables request smuggling (CL + TE, differing CLs, obs-fold, bare CR, whitespace before ':') is a
// 400, after which the connection must close.

/// Why a request could not be parsed: the status, error code and message the server answers with
/// before closing the connection.
struct HTTPParseError: Error, Sendable, Equatable {
    var status: Int
    var code: String
    var message: String

    init(status: Int, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    static func badRequest(_ message: String) -> HTTPParseError {
        HTTPParseError(status: 400, code: "bad_request", message: message)
    }
}

struct HTTPParserLimits: Sendable {
    var maxHeaderBytes: Int
    var maxHeaderCount: Int
    var maxBodyBytes: Int
}

/// How the body of a request is delimited.
enum HTTPBodyFraming: Sendable, Equatable {
    case none
    case length(Int)
    case chunked
}

/// The request line and header section, reported before the body so that the server can answer
/// `Expect: 100-continue` and switch from the header deadline to the body idle timeout.
struct HTTPRequestHead: Sendable {
    var method: String
    var target: String
    var version: String
    var headers: HTTPHeaders
    var framing: HTTPBodyFraming
    var expectsContinue: Bool
    /// Set for a streaming route: the body comes as `.bodyChunk` events (up to this many bytes),
    /// then `.bodyEnd`, instead of inside `.request`.
    var streamingLimit: Int? = nil
}

enum HTTPParserEvent: Sendable {
    case head(HTTPRequestHead)
    case request(HTTPRequest)
    /// Body bytes of a streaming request, in order.
    case bodyChunk([UInt8])
    /// The end of a streaming request's body.
    case bodyEnd
}

struct HTTPRequestParser {
    /// Where the parser is, as far as timeouts care.
    enum Phase: Equatable { case idle, head, body }

    private enum State {
        case start
        case requestLine
        case headerLines
        case body(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case complete
        case failed(HTTPParseError)
    }

    /// Longest chunk-size line (with extensions) accepted; real clients send a few bytes.
    static let maxChunkLineBytes = 4096
    /// Empty lines tolerated before a request line (RFC 9112 §2.2 "SHOULD ignore at least one").
    static let maxLeadingEmptyLines = 8

    let limits: HTTPParserLimits
    /// (method, decoded path) → the body limit of a streaming route, nil for a buffered one.
    /// Consulted once the header section is complete.
    var streamingLimit: (@Sendable (String, String) -> Int?)?
    private var streaming = false
    private var bodyLimit: Int
    private var bodyCount = 0  // bytes of the current body
    private var buffer: [UInt8] = []
    private var readIndex = 0
    private var scanIndex = 0  // resume point of the LF search for the current line
    private var state: State = .start
    private var leadingEmptyLines = 0
    private var sectionBytes = 0  // header section (or trailer section) bytes consumed so far
    private var fieldCount = 0
    private var head = HTTPRequestHead(method: "", target: "", version: "", headers: HTTPHeaders(), framing: .none, expectsContinue: false)
    private var body: [UInt8] = []
    /// Body bytes consumed in total, across requests; grows whenever the body makes progress.
    private(set) var bodyBytesReceived = 0

    init(limits: HTTPParserLimits) {
        self.limits = limits
        bodyLimit = limits.maxBodyBytes
    }

    mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        buffer.append(contentsOf: bytes)
    }

    mutating func feed(_ bytes: [UInt8]) {
        buffer.append(contentsOf: bytes)
    }

    var phase: Phase {
        switch state {
        case .start: readIndex < buffer.count ? .head : .idle
        case .requestLine, .headerLines: .head
        case .body, .chunkSize, .chunkData, .chunkDataEnd, .trailers, .complete: .body
        case .failed: .idle
        }
    }

    /// Bytes received but not yet consumed (e.g. the start of a pipelined request).
    var bufferedByteCount: Int { buffer.count - readIndex }

    /// Returns the next event, nil when more bytes are needed. After an error every call rethrows it.
    mutating func next() throws(HTTPParseError) -> HTTPParserEvent? {
        do {
            return try step()
        } catch {
            state = .failed(error)
            throw error
        }
    }

    private mutating func step() throws(HTTPParseError) -> HTTPParserEvent? {
        while true {
            switch state {
            case .failed(let error):
                throw error
            case .start:
                compactIfUseful()
                guard try skipLeadingEmptyLines() else { return nil }
                scanIndex = readIndex
                sectionBytes = 0
                fieldCount = 0
                state = .requestLine
            case .requestLine:
                guard let line = try nextLine(limit: limits.maxHeaderBytes) else { return nil }
                try parseRequestLine(line)
                state = .headerLines
            case .headerLines:
                guard let line = try nextLine(limit: limits.maxHeaderBytes - sectionBytes) else {
                    return nil
                }
                if line.isEmpty {
                    return .head(try finishHead())
                }
                let field = try parseField(line)
                head.headers.add(field.name, field.value)
            case .body(let remaining):
                let (n, chunk) = consumeBody(upTo: remaining)
                state = remaining - n == 0 ? .complete : .body(remaining: remaining - n)
                if let chunk { return .bodyChunk(chunk) }
                if remaining - n != 0 { return nil }
            case .chunkSize:
                scanIndex = max(scanIndex, readIndex)
                guard let line = try nextLine(limit: Self.maxChunkLineBytes, tooLong: .badRequest("chunk size line too long")) else {
                    return nil
                }
                let size = try parseChunkSize(line)
                if size == 0 {
                    sectionBytes = 0
                    fieldCount = 0
                    state = .trailers
                } else {
                    guard size <= bodyLimit - bodyCount else { throw bodyTooLarge() }
                    state = .chunkData(remaining: size)
                }
            case .chunkData(let remaining):
                let (n, chunk) = consumeBody(upTo: remaining)
                state = remaining - n == 0 ? .chunkDataEnd : .chunkData(remaining: remaining - n)
                if let chunk { return .bodyChunk(chunk) }
                if remaining - n != 0 { return nil }
            case .chunkDataEnd:
                // The CRLF after chunk data; a lone LF is accepted like any line ending.
                guard readIndex < buffer.count else { return nil }
                if buffer[readIndex] == UInt8(ascii: "\n") {
                    readIndex += 1
                } else if buffer[readIndex] == UInt8(ascii: "\r") {
                    guard readIndex + 1 < buffer.count else { return nil }
                    guard buffer[readIndex + 1] == UInt8(ascii: "\n") else { throw .badRequest("chunk data not followed by CRLF") }
                    readIndex += 2
                } else {
                    throw .badRequest("chunk data longer than its declared size")
                }
                scanIndex = readIndex
                state = .chunkSize
            case .trailers:
                scanIndex = max(scanIndex, readIndex)
                guard let line = try nextLine(limit: limits.maxHeaderBytes - sectionBytes) else {
                    return nil
                }
                if line.isEmpty {
                    state = .complete
                } else {
                    // Trailers are validated like header fields, then dropped: nothing here needs them.
                    _ = try parseField(line)
                }
            case .complete:
                if streaming {
                    streaming = false
                    head.headers = HTTPHeaders()
                    state = .start
                    return .bodyEnd
                }
                let request = HTTPRequest(method: head.method, target: head.target, version: head.version, headers: head.headers, body: body)
                body = []
                head.headers = HTTPHeaders()
                state = .start
                return .request(request)
            }
        }
    }

    // MARK: - Lines

    /// The next line without its terminator (LF, optionally preceded by CR), consuming it; nil if no
    /// complete line is buffered. `limit` bounds the line including its terminator; over it, throws
    /// `tooLong`, or the 431 of the header section when that is nil. Lazy because building the
    /// error for every header line showed in profiles; optional because an autoclosure calling
    /// `headerTooLarge()` would capture `self` during this mutating call.
    private mutating func nextLine(limit: Int, tooLong: @autoclosure () -> HTTPParseError? = nil) throws(HTTPParseError) -> ArraySlice<UInt8>? {
        let end = buffer.count
        var i = max(scanIndex, readIndex)
        while i < end && buffer[i] != UInt8(ascii: "\n") { i += 1 }
        guard i < end else {
            scanIndex = end
            if end - readIndex > limit { throw tooLong() ?? headerTooLarge() }
            return nil
        }
        let lineLength = i + 1 - readIndex
        if lineLength > limit { throw tooLong() ?? headerTooLarge() }
        var line = buffer[readIndex..<i]
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        // RFC 9112 §2.2: a bare CR is invalid; rejecting it avoids disagreeing with proxies about lines.
        if line.contains(UInt8(ascii: "\r")) { throw .badRequest("bare CR in request") }
        readIndex = i + 1
        scanIndex = readIndex
        sectionBytes += lineLength
        return line
    }

    /// Skips CRLF / LF before a request line. Returns false when the buffer holds nothing else yet.
    private mutating func skipLeadingEmptyLines() throws(HTTPParseError) -> Bool {
        while readIndex < buffer.count {
            let b = buffer[readIndex]
            if b == UInt8(ascii: "\n") {
                readIndex += 1
            } else if b == UInt8(ascii: "\r") {
                guard readIndex + 1 < buffer.count else { return false }
                guard buffer[readIndex + 1] == UInt8(ascii: "\n") else { throw .badRequest("bare CR in request") }
                readIndex += 2
            } else {
                leadingEmptyLines = 0
                return true
            }
            leadingEmptyLines += 1
            if leadingEmptyLines > Self.maxLeadingEmptyLines { throw .badRequest("too many empty lines before the request line") }
        }
        return false
    }

    /// Moves up to `remaining` buffered bytes into the body (or, streaming, into the returned
    /// chunk); returns how many it moved.
    private mutating func consumeBody(upTo remaining: Int) -> (Int, [UInt8]?) {
        let n = min(remaining, buffer.count - readIndex)
        var chunk: [UInt8]?
        if n > 0 {
            if streaming {
                chunk = Array(buffer[readIndex..<readIndex + n])
            } else {
                body.append(contentsOf: buffer[readIndex..<readIndex + n])
            }
            bodyCount += n
            readIndex += n
            bodyBytesReceived += n
            compactIfUseful()
        }
        return (n, chunk)
    }

    private mutating func compactIfUseful() {
        if readIndex == buffer.count {
            // Idle keep-alive connections should not pin a large read buffer each.
            buffer.removeAll(keepingCapacity: buffer.capacity <= 16 * 1024)
            scanIndex = 0
            readIndex = 0
        } else if readIndex >= 1 << 16 || (readIndex >= 4096 && readIndex * 2 >= buffer.count) {
            buffer.removeFirst(readIndex)
            scanIndex = max(0, scanIndex - readIndex)
            readIndex = 0
        }
    }

    // MARK: - Request line and fields

    private mutating func parseRequestLine(_ line: ArraySlice<UInt8>) throws(HTTPParseError) {
        let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .badRequest("malformed request line") }
        let method = parts[0], target = parts[1], version = parts[2]
        guard !method.isEmpty, method.allSatisfy(isTokenByte) else { throw .badRequest("invalid method") }
        guard !target.isEmpty, target.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else { throw .badRequest("invalid request target") }
        guard
            target.first == UInt8(ascii: "/") || target.elementsEqual("*".utf8)
                || target.starts(with: "http://".utf8) || target.starts(with: "https://".utf8)
        else {
            throw .badRequest("unsupported request-target form")
        }
        guard version.count == 8, version.starts(with: "HTTP/".utf8) else { throw .badRequest("invalid HTTP version") }
        let major = version[version.startIndex + 5], dot = version[version.startIndex + 6], minor = version[version.startIndex + 7]
        guard isDigit(major), dot == UInt8(ascii: "."), isDigit(minor) else { throw .badRequest("invalid HTTP version") }
        guard major == UInt8(ascii: "1") else {
            throw HTTPParseError(status: 505, code: "version_not_supported", message: "only HTTP/1.x is supported")
        }
        head = HTTPRequestHead(
            method: String(decoding: method, as: UTF8.self),
            target: String(decoding: target, as: UTF8.self),
            // HTTP/1.2+ would be handled as 1.1 (RFC 9110 §6.2); keep 1.0 distinct for keep-alive rules.
            version: minor == UInt8(ascii: "0") ? "HTTP/1.0" : "HTTP/1.1",
            headers: HTTPHeaders(),
            framing: .none,
            expectsContinue: false
        )
    }

    private mutating func parseField(_ line: ArraySlice<UInt8>) throws(HTTPParseError) -> (name: String, value: String) {
        if line.first == UInt8(ascii: " ") || line.first == UInt8(ascii: "\t") {
            throw .badRequest("obsolete line folding in header section")
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { throw .badRequest("header line without colon") }
        let name = line[line.startIndex..<colon]
        // Whitespace before ':' fails the token check: RFC 9112 §5.1 requires a 400 there.
        guard !name.isEmpty, name.allSatisfy(isTokenByte) else { throw .badRequest("invalid header name") }
        var value = line[(colon + 1)...]
        while let f = value.first, f == 0x20 || f == 0x09 { value = value.dropFirst() }
        while let l = value.last, l == 0x20 || l == 0x09 { value = value.dropLast() }
        guard value.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }) else {
            throw .badRequest("invalid character in header value")
        }
        fieldCount += 1
        if fieldCount > limits.maxHeaderCount {
            throw HTTPParseError(status: 431, code: "header_too_large", message: "more than \(limits.maxHeaderCount) header fields")
        }
        return (String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self))
    }

    /// Decides body framing (RFC 9112 §6) once the header section is complete.
    private mutating func finishHead() throws(HTTPParseError) -> HTTPRequestHead {
        let headers = head.headers
        let limit = streamingLimit.flatMap { lookup in
            head.target == "*" ? nil : lookup(head.method, percentDecode(splitTarget(head.target).path, plusAsSpace: false))
        }
        streaming = limit != nil
        bodyLimit = limit ?? limits.maxBodyBytes
        bodyCount = 0
        head.streamingLimit = limit
        let hosts = headers.values("Host")
        if head.version == "HTTP/1.1" && hosts.count != 1 {
            throw .badRequest(hosts.isEmpty ? "missing Host header" : "multiple Host headers")
        }
        let transferEncodings = headers.values("Transfer-Encoding")
        let contentLengths = headers.values("Content-Length")
        if !transferEncodings.isEmpty {
            if !contentLengths.isEmpty { throw .badRequest("both Content-Length and Transfer-Encoding") }
            if head.version == "HTTP/1.0" { throw .badRequest("Transfer-Encoding in an HTTP/1.0 request") }
            let codings = transferEncodings.flatMap { $0.split(separator: ",") }.map { trimOWS($0) }.filter { !$0.isEmpty }
            for coding in codings where !asciiCaseInsensitiveEquals(coding, "chunked") {
                throw HTTPParseError(status: 501, code: "not_implemented", message: "unsupported transfer coding")
            }
            guard codings.count == 1 else { throw .badRequest("chunked applied more than once") }
            head.framing = .chunked
            state = .chunkSize
            scanIndex = readIndex
        } else if !contentLengths.isEmpty {
            var length: Int?
            for item in contentLengths.flatMap({ $0.split(separator: ",", omittingEmptySubsequences: false) }) {
                let value = try parseContentLength(trimOWS(item))
                if let length, length != value { throw .badRequest("conflicting Content-Length values") }
                length = value
            }
            let n = length ?? 0
            if n > bodyLimit { throw bodyTooLarge() }
            head.framing = n > 0 ? .length(n) : .none
            state = n > 0 ? .body(remaining: n) : .complete
        } else {
            head.framing = .none
            state = .complete
        }
        head.expectsContinue =
            head.version == "HTTP/1.1"
            && headers.values("Expect").contains { asciiCaseInsensitiveEquals(trimOWS(Substring($0)), "100-continue") }
        body = []
        if !streaming, case .length(let n) = head.framing { body.reserveCapacity(n) }
        return head
    }

    private func parseContentLength(_ s: Substring) throws(HTTPParseError) -> Int {
        guard !s.isEmpty, s.utf8.allSatisfy(isDigit) else { throw .badRequest("invalid Content-Length") }
        var value = 0
        for digit in s.utf8 {
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(Int(digit - UInt8(ascii: "0")))
            if o1 || o2 { throw .badRequest("Content-Length out of range") }
            value = sum
        }
        return value
    }

    private func parseChunkSize(_ line: ArraySlice<UInt8>) throws(HTTPParseError) -> Int {
        var size = 0
        var i = line.startIndex
        while i < line.endIndex, let digit = hexValue(line[i]) {
            if size > (Int.max >> 4) { throw bodyTooLarge() }
            size = size << 4 | Int(digit)
            i += 1
        }
        guard i > line.startIndex else { throw .badRequest("invalid chunk size") }
        // Chunk extensions (`;name=value`, RFC 9112 §7.1.1) are tolerated and ignored.
        var rest = line[i...]
        while let f = rest.first, f == 0x20 || f == 0x09 { rest = rest.dropFirst() }
        guard rest.isEmpty || rest.first == UInt8(ascii: ";") else { throw .badRequest("invalid chunk size") }
        guard rest.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }) else { throw .badRequest("invalid chunk extension") }
        return size
    }

    private func headerTooLarge() -> HTTPParseError {
        HTTPParseError(status: 431, code: "header_too_large", message: "header section exceeds the limit of \(limits.maxHeaderBytes) bytes")
    }

    private func bodyTooLarge() -> HTTPParseError {
        HTTPParseError(status: 413, code: "payload_too_large", message: "request body exceeds the limit of \(bodyLimit) bytes")
    }
}

@inline(__always)
func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

/// tchar (RFC 9110 §5.6.2).
@inline(__always)
func isTokenByte(_ b: UInt8) -> Bool {
    switch b {
    case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: true
    case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
        UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
        UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
        true
    default: false
    }
}
