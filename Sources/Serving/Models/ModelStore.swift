import Foundation
import SNN
import Synchronization

/// The models a server hosts, laid out as TensorFlow Serving does: `ROOT/NAME/VERSION/` holds one
/// model directory (`model.json`, `weights.safetensors`, for a fine-tuned SNN `ann.safetensors`,
/// which serving does not load) per positive integer version, and
/// `ROOT/NAME/serving.json` records the default version (absent: the highest). Version
/// directories are written once and never modified, so a reader can never see half a version.
public final class ModelStore: Sendable {
    public let root: String

    /// One loaded, immutable version of a model.
    public final class Version: Sendable {
        public let name: String
        public let number: Int
        public let model: Model
        /// The model's SNN configuration; a version loads only if it has one.
        public let snn: SNNConfig
        public let directory: String
        public let loadedAt: Date
        init(name: String, number: Int, model: Model, snn: SNNConfig, directory: String) {
            self.name = name
            self.number = number
            self.model = model
            self.snn = snn
            self.directory = directory
            self.loadedAt = Date()
        }
    }

    public enum VersionState: Sendable {
        case ready(Version)
        case failed(String)
    }

    public struct Entry: Sendable {
        public var name: String
        public var versions: [Int: VersionState]
        public var defaultVersion: Int?
        /// Versions that have run their warm-up inference.
        public var warmedVersions: Set<Int> = []
        /// Whether the default version has run its warm-up inference.
        public var warmed: Bool { defaultVersion.map { warmedVersions.contains($0) } ?? false }
        /// Set when `serving.json` names a version this process cannot serve (it failed to load or
        /// warm here): why, while the previous default keeps serving.
        public var unservedDefault: String?
        /// Versions refused here for good (failed to load or warm): not tried again unless their
        /// directory is replaced.
        public var refusedVersions: Set<Int> = []
        /// Each version directory's inode at load, so a directory replaced under the same number (a
        /// model removed and created again) is loaded again.
        public var identities: [Int: UInt64] = [:]
        /// The default version's load failure, if it failed.
        public var defaultFailure: String? {
            if case .failed(let reason)? = defaultVersion.flatMap({ versions[$0] }) { return reason }
            return nil
        }
    }

    let entries = Mutex<[String: Entry]>([:])
    let startupDone = Mutex(false)

    /// Set once the startup warm-up has tried every model: from then on a loaded but unwarmed
    /// default version (just pinned, or published) is served cold instead of refused.
    public var startupWarmUpFinished: Bool {
        get { startupDone.withLock { $0 } }
        set { startupDone.withLock { $0 = newValue } }
    }

    public init(root: String) {
        self.root = root
    }

    /// Scans the root and loads every version. A version that fails to load is recorded with its
    /// error (and never served); other models and versions are unaffected.
    ///
    /// - Parameter sweepStagingOlderThan: remove leftovers of interrupted writes at least this
    ///   old (seconds; nil: none). One machine sweeps them all; on a shared volume another process
    ///   may be writing, so a worker sweeps only old ones and an inference replica none.
    public func loadAll(sweepStagingOlderThan age: TimeInterval? = 0) throws {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: root) else {
            throw ModelError("models directory \(root) does not exist")
        }
        for name in names.sorted() where !name.hasPrefix(".") {
            let dir = root + "/" + name
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else { continue }
            if let age { Self.removeInterruptedWrites(in: dir, olderThan: age) }
            let numbers = ModelDirectory.versionNumbers(in: dir)
            guard !numbers.isEmpty else { continue }
            var entry = Entry(name: name, versions: [:], defaultVersion: nil)
            for n in numbers {
                entry.versions[n] = Self.load(name: name, number: n, directory: dir + "/\(n)")
                entry.identities[n] = Self.identity(of: dir + "/\(n)")
            }
            entry.defaultVersion = ModelDirectory.recordedDefault(in: dir) ?? numbers.max()
            entries.withLock { $0[name] = entry }
        }
    }

    /// Atomic writes go through hidden temporary siblings (`.N.tmp-…`, `.N.old-…`,
    /// `.serving.json.tmp-…`); a crash can leave one behind. They were never visible under their
    /// final names, so they are simply removed at startup.
    static func removeInterruptedWrites(in modelRoot: String, olderThan age: TimeInterval) {
        let items = (try? FileManager.default.contentsOfDirectory(atPath: modelRoot)) ?? []
        let cutoff = Date().addingTimeInterval(-age)
        for item in items where item.hasPrefix(".") && (item.contains(".tmp-") || item.contains(".old-")) {
            let modified = (try? FileManager.default.attributesOfItem(atPath: modelRoot + "/" + item))?[.modificationDate] as? Date
            guard (modified ?? .distantPast) <= cutoff else { continue }
            try? FileManager.default.removeItem(atPath: modelRoot + "/" + item)
        }
    }

    static func load(name: String, number: Int, directory: String) -> VersionState {
        do {
            let model = try Model.load(from: directory, sourceANN: false)
            guard let snn = model.description.snn else { return .failed("version \(number) is not a converted SNN") }
            return .ready(Version(name: name, number: number, model: model, snn: snn, directory: directory))
        } catch {
            return .failed("\(error)")
        }
    }

    public var snapshot: [String: Entry] { entries.withLock { $0 } }

    public func entry(_ name: String) -> Entry? { entries.withLock { $0[name] } }

    /// The version a request should use: `number`, or the default. Errors say what is missing.
    public func resolve(_ name: String, version number: Int? = nil) throws(StoreError) -> Version {
        guard let entry = entry(name) else { throw .unknownModel(name) }
        guard let n = number ?? entry.defaultVersion else { throw .unknownVersion(name, number ?? 0) }
        switch entry.versions[n] {
        case .ready(let v): return v
        case .failed(let reason): throw .brokenVersion(name, n, reason)
        case nil: throw .unknownVersion(name, n)
        }
    }

    /// Makes `number` the default version (pin or roll back), persisting the pointer atomically.
    public func setDefault(_ name: String, version number: Int) throws(StoreError) {
        guard let entry = entry(name) else { throw .unknownModel(name) }
        switch entry.versions[number] {
        case .ready: break
        case .failed(let reason): throw .brokenVersion(name, number, reason)
        case nil: throw .unknownVersion(name, number)
        }
        do {
            try writeFileAtomically(
                ModelDirectory.encodePointer(defaultVersion: number),
                to: root + "/" + name + "/" + ModelDirectory.pointerFile)
        } catch {
            throw .io("cannot record the default version: \(error)")
        }
        entries.withLock {
            $0[name]?.defaultVersion = number
            $0[name]?.unservedDefault = nil
        }
    }

    /// The number a newly published version of `name` gets: one above every directory on disk.
    public func nextVersionNumber(_ name: String) -> Int {
        (ModelDirectory.versionNumbers(in: root + "/" + name).max() ?? 0) + 1
    }

    /// Writes `model` as version `number` of `name` (staged, synced and renamed into place by
    /// `Model.save`) unless that version is on disk already, then loads it beside the others.
    /// Returns the loaded version, or the reason it failed to load.
    public func publish(_ model: Model, as name: String, number: Int) throws(StoreError) -> VersionState {
        let directory = root + "/\(name)/\(number)"
        if !FileManager.default.fileExists(atPath: directory + "/" + Model.descriptionFile) {
            var model = model
            model.description.name = name
            do { try model.save(to: directory) } catch { throw .io("cannot write version \(number) of '\(name)': \(error)") }
        }
        return addVersion(name, number: number)
    }

    /// Keeps the newest `keep` versions of `name` and its default; removes the older ones from
    /// memory and disk. Returns the numbers removed.
    @discardableResult
    public func prune(_ name: String, keep: Int) -> [Int] {
        guard let entry = entry(name) else { return [] }
        let numbers = entry.versions.keys.sorted()
        guard numbers.count > keep else { return [] }
        var removed: [Int] = []
        for n in numbers.dropLast(keep) where n != entry.defaultVersion {
            removeVersion(name, number: n)
            // Out of sight first (one rename), so a scan never sees half a directory.
            let hidden = root + "/\(name)/.\(n).old-\(UUID().uuidString.prefix(8))"
            if rename(root + "/\(name)/\(n)", hidden) == 0 {
                try? FileManager.default.removeItem(atPath: hidden)
            } else {
                try? FileManager.default.removeItem(atPath: root + "/\(name)/\(n)")
            }
            removed.append(n)
        }
        return removed
    }

    /// Registers a version directory that has just been published (e.g. by a fine-tuning job).
    @discardableResult
    public func addVersion(_ name: String, number: Int) -> VersionState {
        let directory = root + "/\(name)/\(number)"
        let state = Self.load(name: name, number: number, directory: directory)
        let identity = Self.identity(of: directory)
        entries.withLock { all in
            if all[name] == nil { all[name] = Entry(name: name, versions: [:], defaultVersion: nil) }
            all[name]!.versions[number] = state
            all[name]!.identities[number] = identity
            all[name]!.refusedVersions.remove(number)
        }
        return state
    }

    /// Forgets a model and removes its directory (a model whose creation failed).
    public func removeModel(_ name: String) {
        entries.withLock { _ = $0.removeValue(forKey: name) }
        try? FileManager.default.removeItem(atPath: root + "/" + name)
    }

    public func removeVersion(_ name: String, number: Int) {
        entries.withLock { _ = $0[name]?.versions.removeValue(forKey: number) }
    }

    public func markWarmed(_ name: String, version: Int) { entries.withLock { _ = $0[name]?.warmedVersions.insert(version) } }

    // MARK: replicas sharing the directory

    /// Brings memory in step with the directory when other processes write it (replicas sharing a
    /// volume): loads version directories that appeared (complete by construction: `Model.save`
    /// renames a finished directory into place), forgets removed ones except the one being
    /// served, and returns each model whose recorded default (`serving.json`, else the highest)
    /// differs from the one served. Loading is CPU and I/O work: call it off the cooperative pool.
    public func synchronize() -> [(name: String, version: Int)] {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: root) else { return [] }
        var wanted: [(String, Int)] = []
        for name in names.sorted() where !name.hasPrefix(".") {
            let dir = root + "/" + name
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue else { continue }
            let onDisk = Set(ModelDirectory.versionNumbers(in: dir))
            let known = entry(name).map { Set($0.versions.keys) } ?? []
            // New numbers, and known numbers whose directory was replaced (a model created again).
            let identities = entry(name)?.identities ?? [:]
            let replaced = onDisk.intersection(known).filter { identities[$0] != Self.identity(of: dir + "/\($0)") }
            for n in onDisk.subtracting(known).union(replaced).sorted() { addVersion(name, number: n) }
            let served = entry(name)?.defaultVersion
            for n in known.subtracting(onDisk) where n != served { removeVersion(name, number: n) }
            // The pointer is authoritative: a version without one (published but not deployed,
            // or a model still being created) is loaded but never adopted.
            guard let recorded = ModelDirectory.recordedDefault(in: dir), onDisk.contains(recorded) else { continue }
            if recorded == served {
                entries.withLock { $0[name]?.unservedDefault = nil }
            } else if entry(name)?.refusedVersions.contains(recorded) != true {
                wanted.append((name, recorded))
            }
        }
        // Models whose directory is gone (removed by the worker) are forgotten.
        let present = Set(names.filter { !$0.hasPrefix(".") })
        entries.withLock { all in
            for name in all.keys where !present.contains(name) { all.removeValue(forKey: name) }
        }
        return wanted
    }

    /// Serves `number` as the default from memory if the pointer on disk still names it (a
    /// `PUT …/default` or another change may have landed during the warm-up). Returns whether it
    /// flipped.
    @discardableResult
    public func adoptDefault(_ name: String, version number: Int) -> Bool {
        entries.withLock {
            guard ModelDirectory.recordedDefault(in: root + "/" + name) == number, $0[name]?.versions[number] != nil else { return false }
            $0[name]?.defaultVersion = number
            $0[name]?.unservedDefault = nil
            return true
        }
    }

    /// Marks a version as refused here for good (see `Entry.refusedVersions`).
    public func refuseVersion(_ name: String, version number: Int) {
        entries.withLock { _ = $0[name]?.refusedVersions.insert(number) }
    }

    /// The inode of a directory (0 when it cannot be read).
    static func identity(of path: String) -> UInt64 {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0
    }

    /// Records that the recorded default cannot serve here; the previous default keeps serving.
    /// Returns false when the same reason was recorded already (so it is logged once).
    @discardableResult
    public func recordUnservedDefault(_ name: String, reason: String) -> Bool {
        entries.withLock {
            guard $0[name]?.unservedDefault != reason else { return false }
            $0[name]?.unservedDefault = reason
            return true
        }
    }

    public enum StoreError: Error, Sendable, CustomStringConvertible {
        case unknownModel(String)
        case unknownVersion(String, Int)
        case brokenVersion(String, Int, String)
        case io(String)

        public var description: String {
            switch self {
            case .unknownModel(let n): "model '\(n)' does not exist"
            case .unknownVersion(let n, let v): "model '\(n)' has no version \(v)"
            case .brokenVersion(let n, let v, let r): "version \(v) of model '\(n)' failed to load: \(r)"
            case .io(let m): m
            }
        }
    }
}
