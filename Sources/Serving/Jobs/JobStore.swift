import Foundation
import SNN
import Synchronization

/// Durable job records and event logs under `STATE/jobs/ID/`: `job.json` is replaced atomically
/// on every change; `events.jsonl` is append-only, one JSON object per line, fsynced per event, and
/// a torn last line (a crash mid-write) is ignored on reading.
struct JobStore: Sendable {
    let directory: String

    init(stateDirectory: String) throws {
        directory = stateDirectory + "/jobs"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    func jobDirectory(_ id: String) -> String { directory + "/" + id }
    func checkpointDirectory(_ id: String) -> String { jobDirectory(id) + "/checkpoint" }
    /// A conversion job's imported ANN, kept until the job ends.
    func importedModelDirectory(_ id: String) -> String { jobDirectory(id) + "/imported" }

    func save(_ job: JobRecord) throws {
        try FileManager.default.createDirectory(atPath: jobDirectory(job.id), withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try writeFileAtomically(encoder.encode(job), to: jobDirectory(job.id) + "/job.json")
    }

    func append(_ event: JobEvent, to id: String) throws {
        let path = jobDirectory(id) + "/events.jsonl"
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: JSONEncoder().encode(event) + Data("\n".utf8))
        try handle.synchronize()
    }

    /// Every stored job with its events, oldest first.
    func loadAll() -> [(JobRecord, [JobEvent])] {
        let ids = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var out: [(JobRecord, [JobEvent])] = []
        for id in ids where id.hasPrefix("ftjob_") || id.hasPrefix("cvjob_") {
            guard let data = FileManager.default.contents(atPath: jobDirectory(id) + "/job.json"),
                let job = try? JSONDecoder().decode(JobRecord.self, from: data)
            else { continue }
            var events: [JobEvent] = []
            if let text = try? String(contentsOfFile: jobDirectory(id) + "/events.jsonl", encoding: .utf8) {
                for line in text.split(separator: "\n") {
                    if let e = try? JSONDecoder().decode(JobEvent.self, from: Data(line.utf8)) { events.append(e) }
                }
            }
            out.append((job, events))
        }
        return out.sorted { ($0.0.createdAt, $0.0.id) < ($1.0.createdAt, $1.0.id) }
    }
}
