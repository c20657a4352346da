import Foundation
import Imaging

/// Resolves the training-data references of job requests: a dataset id (`ds_…`, uploaded with
/// `POST /v1/datasets`) or a path under the data root — an ImageFolder directory or a .tar/.tar.gz
/// of one, extracted once within `limits`. Nothing resolves outside the root.
struct TrainingData: Sendable {
    var stateDirectory: String
    /// nil: paths are disabled, only uploaded datasets resolve.
    var dataRoot: String?
    var limits: DatasetLimits

    func folder(_ reference: String) throws(DatasetError) -> ImageFolder {
        var directory: String
        if reference.hasPrefix("ds_") {
            guard reference.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else { throw .reference("invalid dataset id") }
            directory = stateDirectory + "/datasets/" + reference
            guard FileManager.default.fileExists(atPath: directory) else { throw .reference("dataset \(reference) does not exist") }
        } else {
            guard let root = dataRoot else {
                throw .reference("paths are disabled: start the server with --data-root DIR, or upload a dataset with POST /v1/datasets")
            }
            guard !reference.hasPrefix("/"), !reference.split(separator: "/").contains(".."), !reference.contains("\0") else {
                throw .reference("training data must be a relative path inside the data root, without '..'")
            }
            let rootReal = URL(fileURLWithPath: root).resolvingSymlinksInPath().path
            let full = URL(fileURLWithPath: rootReal + "/" + reference).resolvingSymlinksInPath().path
            guard full == rootReal || full.hasPrefix(rootReal + "/") else { throw .reference("training data resolves outside the data root") }
            directory = full
            if full.hasSuffix(".tar") || full.hasSuffix(".tar.gz") || full.hasSuffix(".tgz") {
                directory = try Datasets.extractOnce(archive: full, into: stateDirectory + "/extracted", limits: limits)
            }
        }
        do { return try ImageFolder(root: Datasets.imageFolderRoot(directory)) } catch { throw .reference("training data: \(error)") }
    }
}
