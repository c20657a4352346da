import Synchronization

/// What the OpenAPI document says about one route, given where the route is registered
/// (`ServingAPI.route`), so that paths, methods, auth and body types come from the code.
public struct APIOperation: Sendable {
    public enum RequestBody: Sendable {
        /// A JSON body of a `Decodable` type.
        case json(JSONValue)
        /// Classify's images: raw JPEG/PNG, multipart form or JSON with base64 images.
        case images
        /// Any bytes (an archive), read from the bytes themselves.
        case binary(String)
    }

    public enum Content: Sendable {
        case json(JSONValue)
        case text(String)
        /// JSON normally, Server-Sent Events with `stream=true`.
        case jsonOrEventStream(JSONValue)
    }

    public struct QueryParameter: Sendable {
        public var name: String
        public var schema: JSONValue
        public var description: String?
        public init(_ name: String, _ schema: JSONValue, _ description: String? = nil) {
            self.name = name
            self.schema = schema
            self.description = description
        }
    }

    public var summary: String
    public var query: [QueryParameter] = []
    public var body: RequestBody?
    public var status = 200
    public var content: Content
    public var description = "OK"
    /// Headers of the successful answer.
    public var headers: [String] = []
    /// Error statuses this route answers with, beside the auth ones its access implies.
    public var errors: [Int] = []
    /// Statuses answered with a body of their own instead of the error body: status → (description, schema).
    public var otherResponses: [Int: (description: String, schema: JSONValue)] = [:]

    /// A JSON answer of type `T`.
    public static func json<T: Decodable>(
        _ summary: String, _ type: T.Type, status: Int = 200, description: String = "OK", body: RequestBody? = nil,
        query: [QueryParameter] = [], headers: [String] = [], errors: [Int] = []
    ) -> APIOperation {
        APIOperation(
            summary: summary, query: query, body: body, status: status, content: .json(JSONSchema.of(type)),
            description: description, headers: headers, errors: errors)
    }
}

/// The OpenAPI 3.1 document served at `GET /openapi.json`, assembled from the registered
/// operations and the JSON Schemas derived from the API's types. Schemathesis checks the running
/// server against it in CI.
public final class OpenAPIDocument: Sendable {
    struct Entry: Sendable {
        var method: String
        var path: String
        var access: ServingAPI.Access
        var operation: APIOperation
    }

    let entries = Mutex<[Entry]>([])

    func add(_ method: String, _ path: String, access: ServingAPI.Access, _ operation: APIOperation) {
        entries.withLock { $0.append(Entry(method: method, path: path, access: access, operation: operation)) }
    }

    /// Shared error answers, by status: description and headers.
    static let errorResponses: [Int: (String, [String])] = [
        400: ("Invalid parameter, body or image", []),
        401: ("Missing or invalid bearer token", ["WWW-Authenticate"]),
        403: ("Wrong scope, or admin endpoints disabled", []),
        404: ("Unknown model, version or job", []),
        409: ("Conflicts with the current state", []),
        413: ("Body, archive or image count over the limit", []),
        415: ("Unsupported Content-Type", []),
        429: ("Queue full; retry after the given seconds", ["Retry-After"]),
        503: ("Not ready, busy or shutting down", ["Retry-After"]),
        504: ("deadline_ms exceeded", []),
        507: ("Not enough free disk space", []),
    ]

    public var json: JSONValue {
        let errorSchema = JSONSchema.of(APIError.Body.self)
        var paths: [(String, JSONValue)] = []
        for entry in entries.withLock({ $0 }) {
            let item = operation(entry)
            if let i = paths.firstIndex(where: { $0.0 == entry.path }), case .object(let methods) = paths[i].1 {
                paths[i].1 = .object(methods + [(entry.method.lowercased(), item)])
            } else {
                paths.append((entry.path, .object([(entry.method.lowercased(), item)])))
            }
        }
        let responses: [(String, JSONValue)] = Self.errorResponses.keys.sorted().map { status in
            let (description, headers) = Self.errorResponses[status]!
            var fields: [(String, JSONValue)] = [("description", .string(description))]
            let stringSchema: JSONValue = ["schema": ["type": "string"]]
            if !headers.isEmpty { fields.append(("headers", .object(headers.map { ($0, stringSchema) }))) }
            fields.append(("content", ["application/json": ["schema": ["$ref": "#/components/schemas/Error"]]]))
            return ("E\(status)", .object(fields))
        }
        return [
            "openapi": "3.1.0",
            "info": [
                "title": "SpikeServe", "version": "1.0.0",
                "description":
                    "Serving spiking neural networks converted from ANNs (hybrid conversion + STDB). Classification runs under a per-request time-step budget.",
            ],
            "servers": [["url": "/"]],
            "components": [
                "securitySchemes": ["bearer": ["type": "http", "scheme": "bearer"]],
                "schemas": ["Error": errorSchema],
                "responses": .object(responses),
            ],
            "paths": .object(paths),
        ]
    }

    func operation(_ entry: Entry) -> JSONValue {
        let op = entry.operation
        var fields: [(String, JSONValue)] = [("summary", .string(op.summary))]
        switch entry.access {
        case .open: break
        case .inference: fields.append(("security", [[:], ["bearer": []]]))
        case .admin: fields.append(("security", [["bearer": []]]))
        }
        var parameters: [JSONValue] = pathParameters(entry.path)
        for q in op.query {
            var p: [(String, JSONValue)] = [("name", .string(q.name)), ("in", "query"), ("schema", q.schema)]
            if let d = q.description { p.append(("description", .string(d))) }
            parameters.append(.object(p))
        }
        if !parameters.isEmpty { fields.append(("parameters", .array(parameters))) }
        if let body = op.body { fields.append(("requestBody", requestBody(body))) }
        var success: [(String, JSONValue)] = [("description", .string(op.description))]
        let headers = op.headers + ["X-Request-Id"]
        let stringSchema: JSONValue = ["schema": ["type": "string"]]
        success.append(("headers", .object(headers.map { ($0, stringSchema) })))
        switch op.content {
        case .json(let schema): success.append(("content", ["application/json": ["schema": schema]]))
        case .text(let type): success.append(("content", .object([(type, stringSchema)])))
        case .jsonOrEventStream(let schema):
            let stream: JSONValue = ["schema": ["type": "string"]]
            success.append(("content", ["application/json": ["schema": schema], "text/event-stream": stream]))
        }
        var statuses = Set(op.errors)
        switch entry.access {
        case .open: break
        case .inference: statuses.insert(401)
        case .admin: statuses.formUnion([401, 403])
        }
        if entry.path.contains("{") || op.body != nil || !op.query.isEmpty { statuses.insert(400) }
        if entry.path.contains("{") { statuses.insert(404) }
        var responses: [(String, JSONValue)] = [(String(op.status), .object(success))]
        for s in statuses.union(op.otherResponses.keys).sorted() where s != op.status {
            if let (description, schema) = op.otherResponses[s] {
                responses.append((String(s), ["description": .string(description), "content": ["application/json": ["schema": schema]]]))
            } else {
                responses.append((String(s), ["$ref": .string("#/components/responses/E\(s)")]))
            }
        }
        fields.append(("responses", .object(responses)))
        return .object(fields)
    }

    func pathParameters(_ path: String) -> [JSONValue] {
        path.split(separator: "/").filter { $0.hasPrefix("{") }.map { segment in
            let name = String(segment.dropFirst().dropLast())
            let schema: JSONValue = name == "version" ? ["type": "integer", "minimum": 1] : ["type": "string"]
            return ["name": .string(name), "in": "path", "required": true, "schema": schema]
        }
    }

    func requestBody(_ body: APIOperation.RequestBody) -> JSONValue {
        switch body {
        case .json(let schema):
            return ["required": true, "content": ["application/json": ["schema": schema]]]
        case .binary(let description):
            return [
                "required": true, "description": .string(description),
                "content": ["application/octet-stream": ["schema": ["type": "string", "format": "binary"]]],
            ]
        case .images:
            let binary: JSONValue = ["schema": ["type": "string", "format": "binary"]]
            let form: JSONValue = [
                "allOf": [
                    JSONSchema.of(ClassifyParameters.self),
                    [
                        "type": "object", "required": ["image"],
                        "properties": ["image": ["type": "array", "items": ["type": "string", "format": "binary"]]],
                    ],
                ]
            ]
            return [
                "required": true,
                "content": [
                    "image/jpeg": binary, "image/png": binary, "multipart/form-data": ["schema": form],
                    "application/json": ["schema": JSONSchema.of(ClassifyJSONBody.self)],
                ],
            ]
        }
    }
}
