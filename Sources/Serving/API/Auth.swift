import Foundation
import HTTPServer

/// Bearer-token access control with two scopes. `admin` manages models and fine-tuning jobs and
/// may also classify; `inference` may classify. Secure by default: without an admin token the
/// admin endpoints are disabled (403); without an inference token classification is open.
public struct AccessTokens: Sendable {
    public enum Scope: String, Sendable { case admin, inference }

    public var admin: String?
    public var inference: String?

    public init(admin: String? = nil, inference: String? = nil) {
        self.admin = admin.flatMap { $0.isEmpty ? nil : $0 }
        self.inference = inference.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Tokens from `SPIKESERVE_ADMIN_TOKEN` / `SPIKESERVE_INFERENCE_TOKEN`, overridden by a JSON
    /// file `{"admin": "...", "inference": "..."}` when given.
    public static func load(file: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> AccessTokens {
        var tokens = AccessTokens(admin: environment["SPIKESERVE_ADMIN_TOKEN"], inference: environment["SPIKESERVE_INFERENCE_TOKEN"])
        if let file {
            guard let data = FileManager.default.contents(atPath: file),
                let object = try? JSONDecoder().decode([String: String].self, from: data)
            else { throw TokensFileError(path: file) }
            if let a = object["admin"] { tokens.admin = a.isEmpty ? nil : a }
            if let i = object["inference"] { tokens.inference = i.isEmpty ? nil : i }
        }
        return tokens
    }

    /// nil when the request may proceed, else why not.
    public func check(_ request: HTTPRequest, scope: Scope) -> AuthFailure? {
        let presented = Self.bearer(request)
        switch scope {
        case .admin:
            guard let admin else { return .adminDisabled }
            guard let presented else { return .missingToken("this endpoint needs the admin token") }
            if Self.equal(presented, admin) { return nil }
            if let inference, Self.equal(presented, inference) { return .wrongScope }
            return .invalidToken
        case .inference:
            guard let inference else { return nil }
            guard let presented else { return .missingToken("this endpoint needs a bearer token") }
            if Self.equal(presented, inference) || admin.map({ Self.equal(presented, $0) }) == true { return nil }
            return .invalidToken
        }
    }

    static func bearer(_ request: HTTPRequest) -> String? {
        guard let value = request.headers["Authorization"] else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return parts[1].trimmingCharacters(in: .whitespaces)
    }

    /// Compares in time independent of where the strings differ (only the length leaks).
    static func equal(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var diff = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) {
            diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return diff == 0
    }
}

/// Why a request may not use an endpoint.
public enum AuthFailure: Error, Sendable {
    /// Admin endpoints need an admin token configured at startup.
    case adminDisabled
    case missingToken(String)
    case invalidToken
    /// The inference token on an admin endpoint.
    case wrongScope
}

/// The tokens file is missing or not a JSON object of strings.
public struct TokensFileError: Error, CustomStringConvertible {
    public var path: String
    public var description: String { "tokens file \(path) must be a JSON object with string values" }
}
