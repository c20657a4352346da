import Foundation

// Durable writes: what model directories, `serving.json`, job records and checkpoints are written
// with. A file is complete on disk before it is published by a rename, and the directory entry is
// fsynced after the rename, so a crash leaves either the old or the new file, never a torn one.

/// Writes a file and fsyncs it, so a rename after it publishes complete contents even after a crash.
public func writeDurably(_ data: Data, to url: URL) throws {
    try data.write(to: url)
    fsyncPath(url.path)
}

public func fsyncPath(_ path: String) {
    let fd = open(path, O_RDONLY)
    if fd >= 0 {
        _ = fsync(fd)
        close(fd)
    }
}

/// Writes a small file so that readers see the old or the new contents, never a mix: write a
/// temporary sibling, fsync it, rename it over the target, fsync the directory.
public func writeFileAtomically(_ data: Data, to path: String) throws {
    let url = URL(fileURLWithPath: path)
    let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(UUID().uuidString.prefix(8))")
    try writeDurably(data, to: tmp)
    if rename(tmp.path, path) != 0 {
        let code = errno
        try? FileManager.default.removeItem(at: tmp)
        throw ModelError("rename to \(path) failed: \(String(cString: strerror(code)))")
    }
    fsyncPath(url.deletingLastPathComponent().path)
}
