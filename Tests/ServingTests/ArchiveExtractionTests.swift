import Foundation
import Testing

@testable import Serving

/// Dataset archives are extracted in process (libarchive) with limits checked while extracting:
/// an archive bomb stops at the first excess and leaves nothing behind; links, special files and
/// escaping paths are refused; names with spaces are kept as they are.
@Suite struct ArchiveExtractionTests {
    /// A ustar entry: 512-byte header (octal fields, checksum over the header with the checksum
    /// field as spaces), then the data padded to 512 bytes.
    static func entry(_ name: String, type: Character = "0", data: [UInt8] = [], link: String = "", declaredSize: Int? = nil) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ s: String, _ at: Int, _ width: Int) { for (i, b) in s.utf8.prefix(width).enumerated() { h[at + i] = b } }
        func octal(_ v: Int, _ at: Int, _ width: Int) {
            put(String(repeating: "0", count: max(0, width - 1 - String(v, radix: 8).count)) + String(v, radix: 8), at, width - 1)
        }
        put(name, 0, 100)
        octal(type == "5" ? 0o755 : 0o644, 100, 8)
        octal(0, 108, 8); octal(0, 116, 8)
        octal(declaredSize ?? data.count, 124, 12)
        octal(1_700_000_000, 136, 12)
        put(String(type), 156, 1)
        put(link, 157, 100)
        put("ustar", 257, 6); put("00", 263, 2)
        for i in 148..<156 { h[i] = 32 }
        let sum = h.reduce(0) { $0 + Int($1) }
        put(String(repeating: "0", count: 6 - String(sum, radix: 8).count) + String(sum, radix: 8), 148, 6)
        h[154] = 0; h[155] = 32
        return h + data + [UInt8](repeating: 0, count: (512 - data.count % 512) % 512)
    }

    static func tar(_ entries: [[UInt8]]) -> [UInt8] { entries.flatMap { $0 } + [UInt8](repeating: 0, count: 1024) }

    func write(_ bytes: [UInt8], gzip: Bool = false) throws -> (archive: String, directory: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("arch-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/data.tar"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        guard gzip else { return (path, dir) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/gzip")
        p.arguments = [path]
        try p.run()
        p.waitUntilExit()
        return (path + ".gz", dir)
    }

    func limits(total: Int = 1 << 30, files: Int = 1000, file: Int = 1 << 20, reserve: Int = 0) -> DatasetLimits {
        var l = DatasetLimits()
        (l.maxTotalBytes, l.maxFiles, l.maxFileBytes, l.reserveBytes) = (total, files, file, reserve)
        return l
    }

    func extract(_ bytes: [UInt8], gzip: Bool = false, limits: DatasetLimits) throws -> Result<[String], APIError> {
        let (archive, dir) = try write(bytes, gzip: gzip)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let target = dir + "/out"
        do {
            try Datasets.extract(archive: archive, to: target, limits: limits)
        } catch {
            // Nothing is left behind: neither the target nor its temporary sibling.
            let left = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("out") }
            #expect(left.isEmpty, "left behind: \(left)")
            return .failure(APIError(mapping: error) ?? APIError(500, .internal, "\(error)"))
        }
        let files = FileManager.default.enumerator(atPath: target)?.compactMap { $0 as? String }.sorted() ?? []
        return .success(files)
    }

    @Test func namesWithSpacesAndFoldersExtract() throws {
        let bytes = Self.tar([
            Self.entry("class a/", type: "5"), Self.entry("class a/img 1.png", data: Array("x".utf8)),
            Self.entry("b/c.png", data: Array("yy".utf8)),
        ])
        for gzip in [false, true] {
            let files = try extract(bytes, gzip: gzip, limits: limits()).get()
            #expect(files == ["b", "b/c.png", "class a", "class a/img 1.png"])
        }
    }

    /// The archive bomb kind: a small gzip that expands past the total limit (3 MiB of zeros
    /// against 1 MiB here) is refused with 413 during extraction.
    @Test func expansionPastTheTotalLimitStops() throws {
        let bomb = Self.tar([Self.entry("zeros.bin", data: [UInt8](repeating: 0, count: 3 << 20))])
        let result = try extract(bomb, gzip: true, limits: limits(total: 1 << 20, file: 8 << 20))
        guard case .failure(let e) = result else { Issue.record("accepted"); return }
        #expect(e.status == 413 && e.code.rawValue == "archive_too_large", "\(e)")
    }

    @Test func fileSizeAndCountLimits() throws {
        let big = Self.tar([Self.entry("a.bin", data: [UInt8](repeating: 1, count: 5000))])
        guard case .failure(let e1) = try extract(big, limits: limits(file: 4096)) else { Issue.record("accepted"); return }
        #expect(e1.status == 413)
        let many = Self.tar((0..<12).map { Self.entry("f\($0)", data: [1]) })
        guard case .failure(let e2) = try extract(many, limits: limits(files: 10)) else { Issue.record("accepted"); return }
        #expect(e2.status == 413 && e2.message.contains("more than 10 files"))
        #expect(try extract(many, limits: limits(files: 12)).get().count == 12)
        // Folders count too: millions of tiny directory headers would otherwise exhaust inodes.
        let folders = Self.tar((0..<12).map { Self.entry("d\($0)/", type: "5") })
        guard case .failure(let e3) = try extract(folders, limits: limits(files: 10)) else { Issue.record("accepted"); return }
        #expect(e3.status == 413)
    }

    @Test(arguments: [("link", "2"), ("hard", "1"), ("fifo", "6"), ("../evil.png", "0"), ("/abs.png", "0"), ("a/../../x", "0")])
    func forbiddenEntriesAreRefused(name: String, type: String) throws {
        let bytes = Self.tar([Self.entry("ok.png", data: [1]), Self.entry(name, type: Character(type), link: "ok.png")])
        guard case .failure(let e) = try extract(bytes, limits: limits()) else { Issue.record("accepted \(name)"); return }
        #expect(e.status == 400 && e.code.rawValue == "invalid_archive", "\(e)")
    }

    @Test func garbageAndFullDisksAreRefused() throws {
        guard case .failure(let e1) = try extract(Array("not a tar archive at all".utf8), limits: limits()) else {
            Issue.record("accepted"); return
        }
        #expect(e1.status == 400 && e1.code.rawValue == "invalid_archive")
        let ok = Self.tar([Self.entry("a.png", data: [1])])
        guard case .failure(let e2) = try extract(ok, limits: limits(reserve: Int.max / 2)) else { Issue.record("accepted"); return }
        #expect(e2.status == 507 && e2.code.rawValue == "insufficient_storage")
    }
}
