import CNative
import Foundation
import HTTPServer
import Imaging
import SNN

/// How much an uploaded or referenced archive may expand to. Checked while extracting, so an archive
/// bomb (a few MB of gzip holding gigabytes of zeros) stops at the first excess.
public struct DatasetLimits: Sendable {
    /// All extracted files together. Default 2 GiB.
    public var maxTotalBytes = 2 << 30
    /// Files in one archive. Default 200,000.
    public var maxFiles = 200_000
    /// One extracted file. Default 64 MiB (an image; the largest decodable is 40 megapixels).
    public var maxFileBytes = 64 << 20
    /// Free disk space that must remain on the state volume. Default 1 GiB.
    public var reserveBytes = 1 << 30
    public init() {}
}

/// Why an archive or dataset was refused.
public enum DatasetError: Error, Sendable {
    case emptyArchive
    /// Corrupt, or holds entries that are not plain files and folders, or escapes its root.
    case invalidArchive(String)
    /// Not an ImageFolder, classes differ from the model's labels, or an image does not decode.
    case invalidDataset(String)
    /// A data reference (dataset id or path) that does not resolve, or resolves outside the root.
    case reference(String)
    /// Expands beyond `DatasetLimits`.
    case tooLarge(String)
    /// Would leave less than the reserved free space.
    case noSpace(String)
    /// The state directory could not be written.
    case storage(String)
}

/// Training data given as archives: extraction (libarchive, in process: plain files and folders only,
/// no path escaping, within `DatasetLimits`) and locating the ImageFolder root inside it.
public enum Datasets {
    /// Extracts `archive` into a directory under `base` named after its path and modification
    /// time, once; later calls reuse it.
    static func extractOnce(archive: String, into base: String, limits: DatasetLimits) throws(DatasetError) -> String {
        let mtime = ((try? FileManager.default.attributesOfItem(atPath: archive))?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        var hasher = Hasher()
        hasher.combine(archive)
        let key = String(format: "%016llx-%.0f", UInt64(bitPattern: Int64(hasher.finalize())), mtime)
        let target = base + "/" + key
        if FileManager.default.fileExists(atPath: target) { return target }
        try extract(archive: archive, to: target, limits: limits)
        return target
    }

    /// Extracts a tar or tar.gz into `target` atomically (a temporary sibling renamed into place),
    /// in process with libarchive: plain files and folders only, no path escaping the target, and
    /// within `limits`, stopping at the first excess and removing what was written.
    static func extract(archive: String, to target: String, limits: DatasetLimits) throws(DatasetError) {
        let tmp = target + ".tmp-\(UUID().uuidString.prefix(8))"
        do { try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true) } catch {
            throw .storage("cannot create \(tmp)")
        }
        var result = sn_extract_result()
        var message = [CChar](repeating: 0, count: 400)
        let c = sn_extract_limits(
            max_total_bytes: UInt64(limits.maxTotalBytes), max_files: UInt64(limits.maxFiles),
            max_file_bytes: UInt64(limits.maxFileBytes), reserve_bytes: UInt64(limits.reserveBytes))
        let status = sn_extract_archive(archive, tmp, c, &result, &message, message.count)
        guard status == Int32(SN_EXTRACT_OK) else {
            try? FileManager.default.removeItem(atPath: tmp)
            let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            switch status {
            case Int32(SN_EXTRACT_CORRUPT), Int32(SN_EXTRACT_FORBIDDEN): throw .invalidArchive(reason)
            case Int32(SN_EXTRACT_LIMIT): throw .tooLarge(reason)
            case Int32(SN_EXTRACT_NO_SPACE): throw .noSpace(reason)
            default: throw .storage(reason)
            }
        }
        if rename(tmp, target) != 0 {
            try? FileManager.default.removeItem(atPath: tmp)
            if !FileManager.default.fileExists(atPath: target) { throw .storage("cannot move the extracted data into place") }
        }
    }

    /// The ImageFolder root inside an extracted archive: the directory itself, or its only
    /// subdirectory when the archive wraps the class folders in one top folder.
    static func imageFolderRoot(_ directory: String) -> String {
        let fm = FileManager.default
        let entries = ((try? fm.contentsOfDirectory(atPath: directory)) ?? []).filter { !$0.hasPrefix(".") }
        var isDir: ObjCBool = false
        if entries.count == 1, fm.fileExists(atPath: directory + "/" + entries[0], isDirectory: &isDir), isDir.boolValue {
            let inner = directory + "/" + entries[0]
            let innerEntries = ((try? fm.contentsOfDirectory(atPath: inner)) ?? []).filter { !$0.hasPrefix(".") }
            let hasClassFolders = innerEntries.contains { name in
                var d: ObjCBool = false
                return fm.fileExists(atPath: inner + "/" + name, isDirectory: &d) && d.boolValue
            }
            if hasClassFolders { return inner }
        }
        return directory
    }

    static func newDatasetID() -> String {
        "ds_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
    }

    /// Stores an uploaded archive as dataset `ds_…`, extracts it and validates it: class folders,
    /// every image decodable, and — when a model is named — classes equal to the model's labels.
    static func upload(
        _ body: [UInt8], stateDirectory: String, model: ModelStore.Version?,
        limits: DatasetLimits
    ) throws(DatasetError) -> DatasetInfo {
        guard body.count > 4 else { throw DatasetError.emptyArchive }
        let id = newDatasetID()
        let dir = stateDirectory + "/datasets"
        let archive = dir + "/" + id + (body[0] == 0x1F && body[1] == 0x8B ? ".tar.gz" : ".tar")
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try writeDurably(Data(body), to: URL(fileURLWithPath: archive))
        } catch { throw DatasetError.storage("cannot store the upload: \(error)") }
        return try ingest(archive: archive, id: id, bytes: body.count, stateDirectory: stateDirectory, model: model, limits: limits)
    }

    /// Writes a streamed upload straight to `datasets/ds_….tar[.gz]` as it arrives (never whole in
    /// memory); returns the dataset id, the archive path and the byte count. Throws the stream's
    /// error when the client goes away or the body is malformed.
    static func receive(_ stream: RequestBodyStream, stateDirectory: String) async throws -> (id: String, archive: String, bytes: Int) {
        let id = newDatasetID()
        let dir = stateDirectory + "/datasets"
        let partial = dir + "/." + id + ".upload"
        let (bytes, magic) = try await receiveUpload(stream, to: partial)
        guard bytes > 4 else {
            try? FileManager.default.removeItem(atPath: partial)
            throw DatasetError.emptyArchive
        }
        let archive = dir + "/" + id + (magic.starts(with: [0x1F, 0x8B]) ? ".tar.gz" : ".tar")
        guard rename(partial, archive) == 0 else {
            try? FileManager.default.removeItem(atPath: partial)
            throw DatasetError.storage("cannot store the upload")
        }
        return (id, archive, bytes)
    }

    /// Extracts and validates a stored archive (removed afterwards) and publishes it as dataset `id`.
    static func ingest(
        archive: String, id: String, bytes: Int, stateDirectory: String, model: ModelStore.Version?,
        limits: DatasetLimits
    ) throws(DatasetError) -> DatasetInfo {
        let dir = stateDirectory + "/datasets"
        defer { try? FileManager.default.removeItem(atPath: archive) }
        let staging = dir + "/." + id
        try extract(archive: archive, to: staging, limits: limits)
        let folder: ImageFolder
        do { folder = try ImageFolder(root: imageFolderRoot(staging)) } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw .invalidDataset("not an ImageFolder: \(error)")
        }
        if let model {
            guard folder.classes == model.model.description.labels else {
                try? FileManager.default.removeItem(atPath: staging)
                throw .invalidDataset(
                    "classes \(folder.classes) do not match model \(model.name)'s labels \(model.model.description.labels)")
            }
        }
        let spec = model?.model.description.inputSpec ?? InputSpec(channels: 1, height: 8, width: 8, mean: [0], std: [1])
        do { _ = try ImageSet.load(folder, spec: spec) } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw .invalidDataset("undecodable image: \(error)")
        }
        // Publish: the dataset id becomes usable only once validated.
        let final = dir + "/" + id
        if rename(staging, final) != 0 { throw DatasetError.storage("cannot publish the dataset") }
        return DatasetInfo(id: id, classes: folder.classes, images: folder.samples.count, bytes: bytes, createdAt: unixNow())
    }
}

/// Writes a streamed request body to `path` as it arrives (never whole in memory) and syncs it;
/// returns the byte count and the first 8 bytes. Removes the file and rethrows when the client goes
/// away or the body is malformed; storage failures are `DatasetError.storage`.
func receiveUpload(_ stream: RequestBodyStream, to path: String) async throws -> (bytes: Int, magic: [UInt8]) {
    let handle: FileHandle
    do {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: path, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
        handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    } catch { throw DatasetError.storage("cannot store the upload: \(error)") }
    var bytes = 0
    var magic: [UInt8] = []
    do {
        for try await chunk in stream {
            if magic.count < 8 { magic += chunk.prefix(8 - magic.count) }
            do { try handle.write(contentsOf: chunk) } catch { throw DatasetError.storage("cannot store the upload: \(error)") }
            bytes += chunk.count
        }
        do {
            try handle.synchronize()
            try handle.close()
        } catch { throw DatasetError.storage("cannot store the upload: \(error)") }
    } catch {
        try? handle.close()
        try? FileManager.default.removeItem(atPath: path)
        throw error
    }
    return (bytes, magic)
}
