#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Serves GET/HEAD from a folder: `/` is `index.html`, a folder path serves its `index.html`,
/// validators are ETag (size-mtime) and Last-Modified with 304 answers. Nothing outside the folder
/// is reachable: `.`/`..` segments (also percent-encoded), encoded `/` or `\` inside a segment, NUL
/// bytes, and symlinks whose real path leaves the root all get 404. Files are read whole; meant for
/// a web page's assets, not for large downloads.
public struct StaticFiles: Sendable {
    public let root: String

    public init(root: String) {
        self.root = root
    }

    public func handler() -> HTTPHandler {
        { request in serve(request) }
    }

    func serve(_ request: HTTPRequest) -> HTTPResponse {
        guard request.method == "GET" || request.method == "HEAD" else {
            return .error(
                405, code: "method_not_allowed", message: "method \(request.method) not allowed; allowed: GET, HEAD", headers: ["Allow": "GET, HEAD"])
        }
        let notFound = HTTPResponse.error(404, code: "not_found", message: "not found")
        var segments: [String] = []
        for raw in request.rawPath.split(separator: "/") {
            let segment = percentDecode(raw, plusAsSpace: false)
            if segment == "." || segment == ".." || segment.contains("/") || segment.contains("\\") || segment.utf8.contains(0) {
                return notFound
            }
            segments.append(segment)
        }
        guard let realRoot = realPath(root) else { return notFound }
        var candidate = ([root] + segments).joined(separator: "/")
        if request.rawPath.hasSuffix("/") || segments.isEmpty { candidate += "/index.html" }
        guard var real = realPath(candidate), isInside(real, realRoot), var info = fileStatus(real) else { return notFound }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            guard let index = realPath(real + "/index.html"), isInside(index, realRoot), let indexInfo = fileStatus(index) else {
                return notFound
            }
            real = index
            info = indexInfo
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else { return notFound }

        let size = Int(info.st_size)
        let mtime = Int(info.st_mtim.tv_sec)
        let mtimeNanos = Int(info.st_mtim.tv_sec) &* 1_000_000_000 &+ Int(info.st_mtim.tv_nsec)
        let etag = "\"\(String(size, radix: 16))-\(String(mtimeNanos, radix: 16))\""
        var headers: HTTPHeaders = [
            "ETag": etag,
            "Last-Modified": HTTPDate.format(mtime),
            "Cache-Control": "no-cache",
        ]
        if let ifNoneMatch = request.headers["If-None-Match"] {
            // If-None-Match takes precedence over If-Modified-Since (RFC 9110 §13.2.2).
            if Self.etagMatches(ifNoneMatch, etag) { return HTTPResponse(status: 304, headers: headers) }
        } else if let since = request.headers["If-Modified-Since"].flatMap(HTTPDate.parse), mtime <= since {
            return HTTPResponse(status: 304, headers: headers)
        }
        headers.add("Content-Type", Self.contentType(for: real))
        headers.add("X-Content-Type-Options", "nosniff")
        guard let bytes = readFile(real, expectedSize: size) else { return notFound }
        return HTTPResponse(status: 200, headers: headers, body: bytes)
    }

    private func isInside(_ path: String, _ root: String) -> Bool {
        root == "/" || path == root || path.hasPrefix(root + "/")
    }

    /// Weak comparison (RFC 9110 §8.8.3.2), as If-None-Match requires.
    static func etagMatches(_ header: String, _ etag: String) -> Bool {
        header.split(separator: ",").contains { item in
            var tag = trimOWS(item)
            if tag == "*" { return true }
            if tag.hasPrefix("W/") { tag = tag.dropFirst(2) }
            return tag == etag[...]
        }
    }

    static func contentType(for path: String) -> String {
        let name = path.split(separator: "/").last ?? ""
        guard let dot = name.lastIndex(of: ".") else { return "application/octet-stream" }
        switch name[name.index(after: dot)...].lowercased() {
        case "html", "htm": return "text/html; charset=utf-8"
        case "css": return "text/css; charset=utf-8"
        case "js", "mjs": return "text/javascript; charset=utf-8"
        case "json", "map": return "application/json"
        case "txt": return "text/plain; charset=utf-8"
        case "csv": return "text/csv; charset=utf-8"
        case "xml": return "application/xml"
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        case "gif": return "image/gif"
        case "webp": return "image/webp"
        case "svg": return "image/svg+xml"
        case "ico": return "image/x-icon"
        case "wasm": return "application/wasm"
        case "woff": return "font/woff"
        case "woff2": return "font/woff2"
        case "pdf": return "application/pdf"
        default: return "application/octet-stream"
        }
    }
}

private func realPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}

private func fileStatus(_ path: String) -> stat? {
    var info = stat()
    return stat(path, &info) == 0 ? info : nil
}

private func readFile(_ path: String, expectedSize: Int) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(expectedSize)
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n > 0 {
            bytes.append(contentsOf: chunk[0..<n])
        } else if n == 0 {
            return bytes
        } else if errno != EINTR {
            return nil
        }
    }
}
