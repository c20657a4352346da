import Logging

/// Maps method + path pattern to handlers. Patterns are `/`-separated literals and `{name}`
/// parameters, e.g. `/v1/models/{name}/versions/{v}`; empty segments are ignored, so a trailing
/// slash does not matter. Request paths are split before percent-decoding, so `%2F` stays inside
/// a parameter.
public struct Router: Sendable {
    private enum Segment: Sendable {
        case literal(String)
        case parameter(String)
    }

    private struct Route: Sendable {
        var method: String
        var segments: [Segment]
        var handler: HTTPHandler
        var streamingLimit: Int?
    }

    private var routes: [Route] = []
    private var fallbackHandler: HTTPHandler?

    /// Where errors thrown by handlers are logged (they become a 500 for the client); nil: not logged.
    public var logger: Logger?

    public init() {}

    public mutating func add(_ method: String, _ pattern: String, _ handler: @escaping HTTPHandler) {
        add(method, pattern, streamingLimit: nil, handler)
    }

    /// A route whose handler gets the body as `request.bodyStream` (and an empty `body`), started
    /// as soon as the header section is in; the body may be up to `maxBodyBytes` (beyond the
    /// server's buffered limit). Needs the server to know: see `streamingLimit(method:path:)`.
    public mutating func addStreaming(_ method: String, _ pattern: String, maxBodyBytes: Int, _ handler: @escaping HTTPHandler) {
        add(method, pattern, streamingLimit: max(0, maxBodyBytes), handler)
    }

    private mutating func add(_ method: String, _ pattern: String, streamingLimit: Int?, _ handler: @escaping HTTPHandler) {
        let segments = pattern.split(separator: "/").map { part -> Segment in
            if part.hasPrefix("{") && part.hasSuffix("}") && part.count > 2 {
                return .parameter(String(part.dropFirst().dropLast()))
            }
            return .literal(String(part))
        }
        routes.append(Route(method: method.uppercased(), segments: segments, handler: handler, streamingLimit: streamingLimit))
    }

    /// The body limit when `method` + decoded `path` resolve to a streaming route, else nil. Pass it
    /// to `Server(configuration:logger:streamingBody:handler:)`.
    public func streamingLimit(method: String, path: String) -> Int? {
        let segments = path.split(separator: "/").map(String.init)
        var best: Route?
        for route in routes where route.method == method {
            guard Self.match(route.segments, segments) != nil else { continue }
            if best == nil || Self.isMoreSpecific(route, than: best!) { best = route }
        }
        return best?.streamingLimit
    }

    public mutating func get(_ pattern: String, _ h: @escaping HTTPHandler) { add("GET", pattern, h) }
    public mutating func post(_ pattern: String, _ h: @escaping HTTPHandler) { add("POST", pattern, h) }
    public mutating func put(_ pattern: String, _ h: @escaping HTTPHandler) { add("PUT", pattern, h) }
    public mutating func delete(_ pattern: String, _ h: @escaping HTTPHandler) { add("DELETE", pattern, h) }
    public mutating func patch(_ pattern: String, _ h: @escaping HTTPHandler) { add("PATCH", pattern, h) }

    /// Used when no pattern matches the path (e.g. static files); default: 404.
    public mutating func fallback(_ handler: @escaping HTTPHandler) {
        fallbackHandler = handler
    }

    /// `handle` as an `HTTPHandler`, to pass to `HTTPServer`.
    public func handler() -> HTTPHandler {
        { request in await self.handle(request) }
    }

    /// Resolves a request: 404 if no path matches, 405 with an Allow header if the path matches
    /// other methods; HEAD falls back to GET. Thrown errors become a 500.
    public func handle(_ request: HTTPRequest) async -> HTTPResponse {
        let path = request.rawPath.split(separator: "/").map { percentDecode($0, plusAsSpace: false) }
        var best: (route: Route, parameters: [String: String])?
        var bestGet: (route: Route, parameters: [String: String])?
        var allowed: Set<String> = []
        for route in routes {
            guard let parameters = Self.match(route.segments, path) else { continue }
            allowed.insert(route.method)
            if route.method == request.method, best == nil || Self.isMoreSpecific(route, than: best!.route) {
                best = (route, parameters)
            }
            if route.method == "GET", bestGet == nil || Self.isMoreSpecific(route, than: bestGet!.route) {
                bestGet = (route, parameters)
            }
        }
        if best == nil && request.method == "HEAD" { best = bestGet }
        guard let (route, parameters) = best else {
            if !allowed.isEmpty {
                if allowed.contains("GET") { allowed.insert("HEAD") }
                let allow = allowed.sorted().joined(separator: ", ")
                return .error(
                    405, code: "method_not_allowed", message: "method \(request.method) not allowed; allowed: \(allow)", headers: ["Allow": allow])
            }
            if let fallbackHandler { return await run(fallbackHandler, request) }
            return .error(404, code: "not_found", message: "not found")
        }
        var routed = request
        routed.pathParameters = parameters
        return await run(route.handler, routed)
    }

    private func run(_ handler: HTTPHandler, _ request: HTTPRequest) async -> HTTPResponse {
        do {
            return try await handler(request)
        } catch {
            logger?.error("handler failed", metadata: ["request_id": .string(request.requestID), "error": .string(String(describing: error))])
            return .error(500, code: "internal", message: "internal server error (request id \(request.requestID))")
        }
    }

    private static func match(_ pattern: [Segment], _ path: [String]) -> [String: String]? {
        guard pattern.count == path.count else { return nil }
        var parameters: [String: String] = [:]
        for (segment, value) in zip(pattern, path) {
            switch segment {
            case .literal(let literal):
                guard literal == value else { return nil }
            case .parameter(let name):
                parameters[name] = value
            }
        }
        return parameters
    }

    /// Literal segments beat parameters, compared left to right; `/models/latest` wins over `/models/{name}`.
    private static func isMoreSpecific(_ a: Route, than b: Route) -> Bool {
        for (x, y) in zip(a.segments, b.segments) {
            switch (x, y) {
            case (.literal, .parameter): return true
            case (.parameter, .literal): return false
            default: continue
            }
        }
        return false
    }
}
