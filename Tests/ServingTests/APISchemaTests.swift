import Foundation
import HTTPServer
import Testing

@testable import Serving

/// The OpenAPI document is derived from the API's types: these check the derivation itself
/// (schemathesis checks the running server against the whole document in ExternalClientTests).
@Suite struct APISchemaTests {
    func object(_ schema: JSONValue) throws -> (required: [String], properties: [String: JSONValue]) {
        guard case .object(let fields) = schema else { throw SchemaShape.notAnObject }
        var required: [String] = []
        var properties: [String: JSONValue] = [:]
        for (key, value) in fields {
            if key == "required", case .array(let names) = value {
                required = names.compactMap { if case .string(let s) = $0 { s } else { nil } }
            }
            if key == "properties", case .object(let pairs) = value { for (k, v) in pairs { properties[k] = v } }
        }
        return (required, properties)
    }

    enum SchemaShape: Error { case notAnObject }

    func json(_ value: JSONValue) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    @Test func requiredAndOptionalPropertiesFollowTheTypes() throws {
        let summary = try object(JSONSchema.of(ModelSummary.self))
        #expect(Set(summary.required) == ["name", "versions", "ready"])
        #expect(try json(summary.properties["default_version"]!) == #"{"type":["integer","null"]}"#)
        #expect(try json(summary.properties["versions"]!) == #"{"items":{"type":"integer"},"type":"array"}"#)
        let job = try object(JSONSchema.of(FineTuneJobRequest.self))
        #expect(Set(job.required) == ["model", "training_data"])
        let hyper = try object(job.properties["hyperparameters"]!)
        #expect(hyper.required.isEmpty)
        #expect(try json(hyper.properties["surrogate"]!) == #"{"enum":["stdb","linear"],"type":"string"}"#)
        #expect(try json(hyper.properties["epochs"]!) == #"{"maximum":1000,"minimum":1,"type":"integer"}"#)
    }

    @Test func classifyBodyHasImagesBesideTheParameters() throws {
        let body = try object(JSONSchema.of(ClassifyJSONBody.self))
        #expect(body.required == ["images"])
        #expect(Set(body.properties.keys) == ["images", "timesteps", "top_k", "seed", "trace", "deadline_ms", "adaptive", "exit_threshold"])
        #expect(try json(body.properties["deadline_ms"]!) == #"{"maximum":3600000,"minimum":1,"type":"integer"}"#)
    }

    @Test func mapsAndNestedTypesAreDescribed() throws {
        let detail = try object(JSONSchema.of(ModelDetail.self))
        #expect(try json(detail.properties["accuracies"]!) == #"{"additionalProperties":{"type":"number"},"type":"object"}"#)
        let versions = try json(detail.properties["versions"]!)
        #expect(versions.contains(#""enum":["ready","failed"]"#), "\(versions)")
        let error = try object(JSONSchema.of(APIError.Body.self))
        let code = try json(try object(error.properties["error"]!).properties["code"]!)
        #expect(code.contains("\"queue_full\"") && code.contains("\"invalid_image\""), "\(code)")
    }

    @Test func nullableFieldsEncodeNullAndDecodeWhenMissing() throws {
        let summary = ModelSummary(name: "m", defaultVersion: nil, versions: [], architecture: nil, defaultTimesteps: nil, ready: false)
        let text = String(decoding: try JSONEncoder().encode(summary), as: UTF8.self)
        #expect(text.contains(#""default_version":null"#), "\(text)")
        let decoded = try JSONDecoder().decode(ModelSummary.self, from: Data(#"{"name":"m","versions":[1],"ready":true}"#.utf8))
        #expect(decoded.defaultVersion == nil && decoded.versions == [1])
    }

    @Test func everyRouteIsInTheDocumentWithItsMethods() async throws {
        let server = try await TestServer(tokens: AccessTokens(admin: "a"))
        defer { Task { await server.stop() } }
        let paths = try await curl([server.base + "/openapi.json"]).json["paths"] as? [String: [String: Any]] ?? [:]
        #expect(paths.count == 17, "\(paths.keys.sorted())")
        #expect(paths["/v1/fine_tuning/jobs"]?.keys.sorted() == ["get", "post"])
        #expect(paths["/v1/models/{name}/default"]?.keys.sorted() == ["put"])
        let classify = paths["/v1/models/{name}/classify"]?["post"] as? [String: Any]
        let names = (classify?["parameters"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
        #expect(Set(names ?? []) == ["name", "timesteps", "top_k", "seed", "trace", "deadline_ms", "adaptive", "exit_threshold"])
    }
}
