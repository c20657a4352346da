// Request-side value types. Deliberately free of Foundation and swift-log: the fuzzer compiles this
// file together with HTTPParser.swift on its own (see scripts/fuzz-http-parser.sh).

import Synchronization

/// Header fields in arrival order. Names compare case-insensitively (RFC 9110 §5.1); values are kept
/// as received, so repeated fields (e.g. `Set-Cookie`) survive.
public struct HTTPHeaders: Sendable, Sequence, ExpressibleByDictionaryLiteral {
    public typealias Element = (name: String, value: String)
    private var fields: [(name: String, value: String)]

    public init(_ pairs: [(String, String)] = []) {
        fields = pairs.map { (name: $0.0, value: $0.1) }
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(elements)
    }

    /// The first value of `name`, or nil.
    public subscript(name: String) -> String? {
        fields.first { asciiCaseInsensitiveEquals($0.name, name) }?.value
    }

    /// Every value of `name`, in order.
    public func values(_ name: String) -> [String] {
        fields.filter { asciiCaseInsensitiveEquals($0.name, name) }.map(\.value)
    }

    public func contains(_ name: String) -> Bool { self[name] != nil }

    public mutating func add(_ name: String, _ value: String) {
        fields.append((name: name, value: value))
    }

    /// Replaces every value of `name` with a single one (added at the end if absent).
    public mutating func set(_ name: String, _ value: String) {
        if let index = fields.firstIndex(where: { asciiCaseInsensitiveEquals($0.name, name) }) {
            fields[index].value = value
            var i = fields.count - 1
            while i > index {
                if asciiCaseInsensitiveEquals(fields[i].name, name) { fields.remove(at: i) }
                i -= 1
            }
        } else {
            fields.append((name: name, value: value))
        }
    }

    public mutating func remove(_ name: String) {
        fields.removeAll { asciiCaseInsensitiveEquals($0.name, name) }
    }

    /// True when a comma-separated header (e.g. `Connection`) lists `token`, case-insensitively.
    public func hasToken(_ token: String, in name: String) -> Bool {
        values(name).contains { value in
            value.split(separator: ",").contains { asciiCaseInsensitiveEquals(trimOWS(Substring($0)), token) }
        }
    }

    public var count: Int { fields.count }
    public var isEmpty: Bool { fields.isEmpty }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        fields.makeIterator()
    }
}

/// A complete request as handed to a handler.
public struct HTTPRequest: Sendable {
    public var method: String
    /// The raw request-target, e.g. `/v1/models?x=1`.
    public var target: String
    /// Percent-decoded path without the query (`*` for asterisk-form).
    public var path: String
    /// Decoded query (`+` as space); the last value of a repeated name wins.
    public var query: [String: String]
    public var queryItems: [(name: String, value: String)]
    public var version: String
    public var headers: HTTPHeaders
    /// The whole body (Content-Length or de-chunked); empty for a streaming route.
    public var body: [UInt8]
    /// The body as it arrives, for routes added with `Router.addStreaming` (then `body` is empty);
    /// nil otherwise.
    public var bodyStream: RequestBodyStream?
    /// Filled by `Router` from `{name}` segments.
    public var pathParameters: [String: String]
    /// The client's `X-Request-Id` when it is 1...64 chars of `[A-Za-z0-9-_.]`, else a generated one.
    public var requestID: String
    public var remoteAddress: String

    /// Builds a request from its parts, deriving `path`/`query` from `target` (handy in handler tests).
    public init(
        method: String = "GET",
        target: String,
        version: String = "HTTP/1.1",
        headers: HTTPHeaders = HTTPHeaders(),
        body: [UInt8] = [],
        remoteAddress: String = "",
        requestID: String? = nil
    ) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.body = body
        self.bodyStream = nil
        self.remoteAddress = remoteAddress
        self.pathParameters = [:]
        let (rawPath, rawQuery) = splitTarget(target)
        self.path = rawPath == "*" ? "*" : percentDecode(rawPath, plusAsSpace: false)
        var items: [(name: String, value: String)] = []
        if let rawQuery {
            for pair in rawQuery.split(separator: "&", omittingEmptySubsequences: true) {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let name = percentDecode(parts[0], plusAsSpace: true)
                let value = parts.count > 1 ? percentDecode(parts[1], plusAsSpace: true) : ""
                items.append((name: name, value: value))
            }
        }
        self.queryItems = items
        var query: [String: String] = [:]
        for item in items { query[item.name] = item.value }
        self.query = query
        self.requestID = requestID ?? HTTPRequest.requestID(from: headers)
    }

    /// The raw (still percent-encoded) path of `target`; routing splits this before decoding so that
    /// an encoded `/` (`%2F`) stays inside its segment.
    public var rawPath: Substring { splitTarget(target).path }

    /// True when the client asked to keep the connection open (HTTP/1.1 default; 1.0 opt-in).
    public var wantsKeepAlive: Bool {
        if version == "HTTP/1.0" { return headers.hasToken("keep-alive", in: "Connection") }
        return !headers.hasToken("close", in: "Connection")
    }

    static func requestID(from headers: HTTPHeaders) -> String {
        if let id = headers["X-Request-Id"], isValidRequestID(id) { return id }
        return generateRequestID()
    }

    static func isValidRequestID(_ id: String) -> Bool {
        let utf8 = id.utf8
        guard (1...64).contains(utf8.count) else { return false }
        return utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                || b == UInt8(ascii: "-") || b == UInt8(ascii: "_") || b == UInt8(ascii: ".")
        }
    }

    /// 16 hex digits: a process-wide counter put through SplitMix64's finaliser (a bijection, so IDs
    /// never repeat within a process) after mixing in a key from the system CSPRNG (so they differ
    /// between processes and do not reveal the request count). One atomic add per request instead of
    /// a getrandom call.
    static func generateRequestID() -> String {
        var z = requestIDKey &+ requestIDCounter.wrappingAdd(1, ordering: .relaxed).oldValue &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return hex16(z)
    }

    private static let requestIDKey = UInt64.random(in: .min ... .max)
    private static let requestIDCounter = Atomic<UInt64>(0)

    /// `value` as exactly 16 lowercase hex digits.
    static func hex16(_ value: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { buffer in
            let digits: StaticString = "0123456789abcdef"
            for i in 0..<16 {
                let nibble = Int((value >> UInt64(60 - 4 * i)) & 0xF)
                buffer[i] = digits.utf8Start[nibble]
            }
            return 16
        }
    }
}

/// Splits a request-target into raw path and raw query; absolute-form (`http://host/p`) yields `/p`.
func splitTarget(_ target: String) -> (path: Substring, query: Substring?) {
    // Origin-form (`/p?q`), nearly every request: scanned as bytes. The delimiters are ASCII, so
    // the UTF-8 indices found are valid String indices.
    let utf8 = target.utf8
    if utf8.first == UInt8(ascii: "/") {
        var end = utf8.endIndex
        var question: String.Index?
        var i = utf8.startIndex
        while i < end {
            let byte = utf8[i]
            if byte == UInt8(ascii: "#") {
                end = i
                break
            }
            if byte == UInt8(ascii: "?") && question == nil { question = i }
            i = utf8.index(after: i)
        }
        guard let question else { return (target[..<end], nil) }
        return (target[..<question], target[utf8.index(after: question)..<end])
    }
    var rest = Substring(target)
    if let fragment = rest.firstIndex(of: "#") { rest = rest[..<fragment] }
    if !rest.hasPrefix("/"), let scheme = rest.firstRange(of: "://") {
        let afterAuthority = rest[scheme.upperBound...]
        rest = afterAuthority.firstIndex(where: { $0 == "/" || $0 == "?" }).map { afterAuthority[$0...] } ?? "/"
        if rest.hasPrefix("?") { rest = "/" + rest }
    }
    guard let q = rest.firstIndex(of: "?") else { return (rest, nil) }
    return (rest[..<q], rest[rest.index(after: q)...])
}

/// Decodes `%XX` escapes (invalid escapes are kept literally); the result is read as UTF-8 with
/// replacement characters, so it never fails.
func percentDecode<S: StringProtocol>(_ s: S, plusAsSpace: Bool) -> String {
    guard s.utf8.contains(where: { $0 == UInt8(ascii: "%") || (plusAsSpace && $0 == UInt8(ascii: "+")) }) else {
        return String(s)
    }
    let utf8 = Array(s.utf8)
    var out: [UInt8] = []
    out.reserveCapacity(utf8.count)
    var i = 0
    while i < utf8.count {
        let b = utf8[i]
        if b == UInt8(ascii: "%"), i + 2 < utf8.count, let hi = hexValue(utf8[i + 1]), let lo = hexValue(utf8[i + 2]) {
            out.append(hi << 4 | lo)
            i += 3
        } else {
            out.append(plusAsSpace && b == UInt8(ascii: "+") ? UInt8(ascii: " ") : b)
            i += 1
        }
    }
    return String(decoding: out, as: UTF8.self)
}

@inline(__always)
func hexValue(_ b: UInt8) -> UInt8? {
    switch b {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): b - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): b - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): b - UInt8(ascii: "A") + 10
    default: nil
    }
}

func asciiCaseInsensitiveEquals<A: StringProtocol, B: StringProtocol>(_ a: A, _ b: B) -> Bool {
    let x = a.utf8, y = b.utf8
    guard x.count == y.count else { return false }
    return zip(x, y).allSatisfy { lowerASCII($0) == lowerASCII($1) }
}

@inline(__always)
func lowerASCII(_ b: UInt8) -> UInt8 {
    b >= 0x41 && b <= 0x5A ? b | 0x20 : b
}

/// Strips optional whitespace (SP / HTAB) at both ends.
func trimOWS(_ s: Substring) -> Substring {
    var s = s
    while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
    while let l = s.last, l == " " || l == "\t" { s.removeLast() }
    return s
}
