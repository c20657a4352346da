import Foundation
import SNN
import Synchronization
import TensorKit
import Testing

@testable import Serving

/// Work that outlives its reason is dropped: a deadline holds while an image waits behind a long
/// batch, a cancelled request leaves the queue, and long batches run in chunks so the rest of a
/// batch can be dropped. Assertions are about order and outcome, not durations.
@Suite(.serialized) struct SchedulerTests {
    /// A list appended to from several tasks.
    final class Log: Sendable {
        let items = Mutex<[String]>([])
        func add(_ item: String) { items.withLock { $0.append(item) } }
        var all: [String] { items.withLock { $0 } }
    }

    static func shipped() throws -> ModelStore.Version {
        let model = try Model.load(from: repositoryRoot + "/Models/mnist-cnn/2")
        return ModelStore.Version(
            name: "mnist-cnn", number: 2, model: model, snn: model.description.snn!, directory: repositoryRoot + "/Models/mnist-cnn/2")
    }

    static func job(deadline: ContinuousClock.Instant? = nil) -> InferenceScheduler.Job {
        .init(input: [Float](repeating: 0.5, count: 28 * 28), seed: 1, trace: false, deadline: deadline)
    }

    /// 32 images at T = 512 keep the worker busy (2 images a chunk); an image with a 50 ms deadline
    /// submitted behind them fails with deadlineExceeded while the long batch is still running
    /// (before its last image is answered), not after it.
    @Test func deadlineHoldsWhileQueued() async throws {
        let version = try Self.shipped()
        let dropped = Log()
        let scheduler = InferenceScheduler(dropObserver: { _, reason in dropped.add(reason.rawValue) })
        defer { scheduler.stop() }
        let order = Log()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<32 {
                group.addTask {
                    _ = try await scheduler.submit(Self.job(), version: version, timesteps: 512)
                    order.add("long")
                }
            }
            try await Task.sleep(for: .milliseconds(20))
            group.addTask {
                do {
                    _ = try await scheduler.submit(Self.job(deadline: .now + .milliseconds(50)), version: version, timesteps: 4)
                    order.add("short answered")
                } catch let failure as InferenceScheduler.Failure {
                    order.add(failure == .deadlineExceeded ? "short expired" : "short other")
                }
            }
            try await group.waitForAll()
        }
        let events = order.all
        // Long images are answered chunk by chunk; the short one expires while they still run.
        let expired = try #require(events.firstIndex(of: "short expired"), "\(events)")
        #expect(expired < events.lastIndex(of: "long")!, "\(events)")
        #expect(events.filter { $0 == "long" }.count == 32)
        #expect(dropped.all == ["deadline"])
    }

    /// A cancelled request (its client went away) leaves the queue at once and is counted.
    @Test func cancelledRequestLeavesTheQueue() async throws {
        let version = try Self.shipped()
        let dropped = Log()
        let scheduler = InferenceScheduler(dropObserver: { _, reason in dropped.add(reason.rawValue) })
        defer { scheduler.stop() }
        let long = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<16 { group.addTask { _ = try await scheduler.submit(Self.job(), version: version, timesteps: 512) } }
                try await group.waitForAll()
            }
        }
        try await Task.sleep(for: .milliseconds(20))
        let queued = Task { try await scheduler.submit(Self.job(), version: version, timesteps: 4) }
        try await Task.sleep(for: .milliseconds(5))
        queued.cancel()
        await #expect(throws: InferenceScheduler.Failure.cancelled) { try await queued.value }
        #expect(dropped.all.contains("cancelled"))
        try await long.value
        #expect(scheduler.queuedImages == 0)
    }

    /// Chunking never changes results: a batch run in chunks of one image gives each image the same
    /// potentials as a batch run whole.
    @Test func chunkedBatchesGiveTheSameResults() async throws {
        let version = try Self.shipped()
        var config = InferenceScheduler.Configuration()
        config.maxImageStepsPerChunk = 1
        let chunked = InferenceScheduler(configuration: config), whole = InferenceScheduler()
        defer { chunked.stop(); whole.stop() }
        var rng = SeededGenerator(seed: 3)
        let jobs = (0..<6).map { i in
            InferenceScheduler.Job(input: (0..<784).map { _ in rng.nextUnitFloat() * 2 - 0.4 }, seed: UInt64(i), trace: false, deadline: nil)
        }
        async let a = withThrowingTaskGroup(of: (Int, [Float]).self) { group in
            for (i, j) in jobs.enumerated() { group.addTask { (i, try await chunked.submit(j, version: version, timesteps: 16).potentials) } }
            return try await group.reduce(into: [Int: [Float]]()) { $0[$1.0] = $1.1 }
        }
        async let b = withThrowingTaskGroup(of: (Int, [Float]).self) { group in
            for (i, j) in jobs.enumerated() { group.addTask { (i, try await whole.submit(j, version: version, timesteps: 16).potentials) } }
            return try await group.reduce(into: [Int: [Float]]()) { $0[$1.0] = $1.1 }
        }
        let (x, y) = try await (a, b)
        for i in 0..<6 {
            let d = zip(x[i]!, y[i]!).map { abs($0 - $1) }.max() ?? 0
            #expect(d <= 1e-4, "image \(i): \(d)")
        }
    }
}
