import Foundation

/// Where a model's files are. A path may name a model directory itself (it holds `model.json`) or
/// a served model's root in TensorFlow Serving's layout: numbered version directories `1/`, `2/`, …
/// and an optional `serving.json` naming the default version (otherwise the highest).
public enum ModelDirectory {
    public static let pointerFile = "serving.json"

    struct Pointer: Codable {
        var defaultVersion: Int
        enum CodingKeys: String, CodingKey { case defaultVersion = "default_version" }
    }

    /// Numbered subdirectories that hold a model.json, ascending.
    public static func versionNumbers(in modelRoot: String) -> [Int] {
        let items = (try? FileManager.default.contentsOfDirectory(atPath: modelRoot)) ?? []
        return items.compactMap { item in
            guard let n = Int(item), n > 0, String(n) == item,
                FileManager.default.fileExists(atPath: "\(modelRoot)/\(item)/\(Model.descriptionFile)")
            else { return nil }
            return n
        }.sorted()
    }

    /// The default version recorded in `serving.json`, if any.
    public static func recordedDefault(in modelRoot: String) -> Int? {
        guard let data = FileManager.default.contents(atPath: modelRoot + "/" + pointerFile) else { return nil }
        return (try? JSONDecoder().decode(Pointer.self, from: data))?.defaultVersion
    }

    public static func encodePointer(defaultVersion: Int) throws -> Data {
        try JSONEncoder().encode(Pointer(defaultVersion: defaultVersion))
    }

    /// The model directory to load for `path`.
    public static func resolve(_ path: String) -> String {
        if FileManager.default.fileExists(atPath: path + "/" + Model.descriptionFile) { return path }
        let versions = versionNumbers(in: path)
        guard let chosen = recordedDefault(in: path).flatMap({ versions.contains($0) ? $0 : nil }) ?? versions.last else { return path }
        return "\(path)/\(chosen)"
    }
}
