import Foundation
import Imaging
import NativeBridge
import Synchronization

/// Decodes request images on threads of its own, so that decoding never occupies the threads every
/// handler shares: health, readiness, metrics and small requests answer at once whatever the
/// decode load. The pixels being decoded at once are bounded (memory: a 40-megapixel RGB image takes
/// 120 MB decoded); past the bound a request is refused at once with 503 and `Retry-After`. The
/// smallest waiting image is decoded first, so a 28×28 upload does not wait behind photos.
public final class DecodePool: Sendable {
    public struct Configuration: Sendable {
        /// Decoding threads. Default: the cores this process may use (`Parallelism.machineCores`).
        public var threads = Parallelism.machineCores
        /// Most pixels (width × height, from the headers) decoding or waiting to decode at once.
        /// Default 160 megapixels: four of the largest images accepted.
        public var maxPixelsInFlight = 160_000_000
        /// Images up to this many pixels decode on the caller's thread (a 1-megapixel decode takes
        /// a few milliseconds): small requests never wait for a pool thread busy with a photo.
        /// Default 1 megapixel.
        public var inlinePixels = 1_000_000
        public init() {}
    }

    public enum Failure: Error, Sendable {
        case busy(pixels: Int, limit: Int)
        case stopped
    }

    struct State {
        var work: [(pixels: Int, queued: ContinuousClock.Instant, run: @Sendable () -> Void)] = []
        var pixelsInFlight = 0
        var stopped = false
    }

    public let configuration: Configuration
    let state = Mutex(State())
    let available = DispatchSemaphore(value: 0)

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
        for i in 0..<max(1, configuration.threads) {
            let thread = Thread { [self] in loop() }
            thread.name = "spikeserve-decode-\(i)"
            thread.start()
        }
    }

    public var pixelsInFlight: Int { state.withLock { $0.pixelsInFlight } }

    /// Runs `body` on a decode thread once `pixels` fit in the in-flight bound; fails at once with
    /// `busy` when they do not. `pixels` nil (a header that could not be read) is charged as the
    /// whole bound and never decoded inline.
    public func run<T: Sendable>(pixels: Int?, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        let cost = min(max(1, pixels ?? configuration.maxPixelsInFlight), configuration.maxPixelsInFlight)
        if let pixels, pixels <= configuration.inlinePixels { return try body() }
        let refusal = state.withLock { s -> Failure? in
            if s.stopped { return .stopped }
            guard s.pixelsInFlight == 0 || cost <= configuration.maxPixelsInFlight - s.pixelsInFlight else {
                return .busy(pixels: cost, limit: configuration.maxPixelsInFlight)
            }
            s.pixelsInFlight += cost
            return nil
        }
        if let refusal { throw refusal }
        return try await withCheckedThrowingContinuation { continuation in
            state.withLock { s in
                s.work.append(
                    (
                        cost,
                        .now,
                        { [self] in
                            let result = Result { try body() }
                            state.withLock { $0.pixelsInFlight -= cost }
                            continuation.resume(with: result)
                        }
                    ))
            }
            available.signal()
        }
    }

    public func stop() {
        state.withLock { $0.stopped = true }
        for _ in 0..<max(1, configuration.threads) { available.signal() }
    }

    func loop() {
        while true {
            available.wait()
            let next: (@Sendable () -> Void)?? = state.withLock { s in
                if s.work.isEmpty { return s.stopped ? .some(nil) : nil }
                // Smallest first (among equals, the oldest), unless something has waited half a
                // second: then the oldest, so a large image cannot starve behind a stream of smaller ones.
                let oldest = s.work.indices.min { s.work[$0].queued < s.work[$1].queued }!
                let i =
                    ContinuousClock.now - s.work[oldest].queued > .milliseconds(500)
                    ? oldest : s.work.indices.min { s.work[$0].pixels < s.work[$1].pixels }!
                return .some(s.work.remove(at: i).run)
            }
            switch next {
            case .some(let work?): work()
            case .some(nil): return
            case nil: continue
            }
        }
    }
}
