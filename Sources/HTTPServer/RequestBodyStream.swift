import Synchronization

/// The body of a request to a streaming route (`Router.addStreaming`), delivered as it arrives:
/// `for try await chunk in request.bodyStream!`. Chunks are whatever the socket produced (up to a
/// read buffer each); the sequence ends at the end of the body and throws when the client
/// disconnects or the body turns out malformed, over its limit, or too slow (body idle timeout).
///
/// Backpressure: the connection stops reading the socket while more than `highWater` bytes wait
/// here undelivered, and resumes once the consumer is down to `lowWater`. Iterate it from one Task.
public struct RequestBodyStream: Sendable, AsyncSequence {
    public typealias Element = [UInt8]

    let channel: RequestBodyChannel
    /// The declared Content-Length, nil for a chunked body.
    public let expectedLength: Int?

    init(channel: RequestBodyChannel, expectedLength: Int?) {
        self.channel = channel
        self.expectedLength = expectedLength
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let channel: RequestBodyChannel

        public mutating func next() async throws -> [UInt8]? {
            try await channel.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(channel: channel)
    }

    /// Collects the whole body (for handlers that want it after all, within `limit` bytes).
    public func collect(upTo limit: Int = .max) async throws -> [UInt8] {
        var all: [UInt8] = []
        for try await chunk in self {
            guard chunk.count <= limit - all.count else { throw RequestBodyTooLarge(limit: limit) }
            all.append(contentsOf: chunk)
        }
        return all
    }
}

/// Thrown by `RequestBodyStream.collect(upTo:)`.
public struct RequestBodyTooLarge: Error, Sendable {
    public var limit: Int
}

/// The queue between a connection (producer, on its I/O thread) and a handler (consumer).
final class RequestBodyChannel: Sendable {
    static let highWater = 1 << 20
    static let lowWater = 256 << 10

    private struct State {
        var chunks: [[UInt8]] = []
        var head = 0
        var queued = 0
        var finished = false
        var failure: (any Error)?
        var waiter: CheckedContinuation<[UInt8]?, any Error>?
        var producerPaused = false
        var abandoned = false
    }

    private let state = Mutex(State())
    /// Called (from the consumer's thread) when a paused producer may read again.
    private let onDrain: @Sendable () -> Void

    init(onDrain: @escaping @Sendable () -> Void) {
        self.onDrain = onDrain
    }

    /// Queues body bytes; true when the producer should pause until `onDrain`.
    func yield(_ bytes: [UInt8]) -> Bool {
        enum Action { case none, resume(CheckedContinuation<[UInt8]?, any Error>), pause }
        let action: Action = state.withLock { s in
            if s.abandoned || s.finished || s.failure != nil { return .none }
            if let waiter = s.waiter {
                s.waiter = nil
                return .resume(waiter)
            }
            s.chunks.append(bytes)
            s.queued += bytes.count
            if s.queued > Self.highWater {
                s.producerPaused = true
                return .pause
            }
            return .none
        }
        switch action {
        case .none: return false
        case .pause: return true
        case .resume(let waiter):
            waiter.resume(returning: bytes)
            return false
        }
    }

    func finish() {
        let waiter = state.withLock { s -> CheckedContinuation<[UInt8]?, any Error>? in
            s.finished = true
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume(returning: nil)
    }

    func fail(_ error: any Error) {
        let waiter = state.withLock { s -> CheckedContinuation<[UInt8]?, any Error>? in
            guard !s.finished, s.failure == nil else { return nil }
            s.failure = error
            s.chunks = []
            s.head = 0
            s.queued = 0
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume(throwing: error)
    }

    /// The consumer is gone (its handler answered): drop what is queued and whatever still comes.
    func abandon() {
        state.withLock { s in
            s.abandoned = true
            s.chunks = []
            s.head = 0
            s.queued = 0
        }
    }

    func next() async throws -> [UInt8]? {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[UInt8]?, any Error>) in
            enum Action { case wait, chunk([UInt8], drained: Bool), end, failure(any Error) }
            let action: Action = state.withLock { s in
                if s.head < s.chunks.count {
                    let chunk = s.chunks[s.head]
                    s.chunks[s.head] = []
                    s.head += 1
                    if s.head == s.chunks.count {
                        s.chunks.removeAll(keepingCapacity: true)
                        s.head = 0
                    } else if s.head >= 64 && s.head * 2 >= s.chunks.count {
                        s.chunks.removeFirst(s.head)
                        s.head = 0
                    }
                    s.queued -= chunk.count
                    var drained = false
                    if s.producerPaused && s.queued <= Self.lowWater {
                        s.producerPaused = false
                        drained = true
                    }
                    return .chunk(chunk, drained: drained)
                }
                if let failure = s.failure { return .failure(failure) }
                if s.finished { return .end }
                s.waiter = continuation
                return .wait
            }
            switch action {
            case .wait:
                break
            case .chunk(let chunk, let drained):
                if drained { onDrain() }
                continuation.resume(returning: chunk)
            case .end:
                continuation.resume(returning: nil)
            case .failure(let error):
                continuation.resume(throwing: error)
            }
        }
    }
}
