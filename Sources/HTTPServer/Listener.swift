import Dispatch
import Logging

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Accepts connections on a non-blocking listening socket and spreads them over the I/O loops.
final class Listener: @unchecked Sendable {
    // @unchecked Sendable: `nextLoop`, `paused` and `stopped` are only touched on `queue`
    // (serial), where the accept source's handlers also run.
    let fd: Int32
    let queue: DispatchQueue
    let loops: [IOLoop]
    let context: ServerContext
    private let source: DispatchSourceRead
    private var nextLoop = 0
    private var paused = false
    private var stopped = false
    private var lastLimitWarning: UInt64 = 0

    /// Accepts per readiness event before yielding the queue.
    static let acceptBudget = 128
    /// Pause after EMFILE/ENFILE/ENOBUFS/ENOMEM, giving running connections time to free descriptors.
    static let backoff = DispatchTimeInterval.milliseconds(100)

    init(fd: Int32, queue: DispatchQueue, loops: [IOLoop], context: ServerContext) {
        self.fd = fd
        self.queue = queue
        self.loops = loops
        self.context = context
        source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
    }

    func start() {
        source.setEventHandler { [self] in acceptAll() }
        // Closing in the cancel handler: the fd must outlive the source that watches it.
        source.setCancelHandler { [fd] in Syscall.close(fd) }
        source.activate()
    }

    /// Stops accepting and closes the listening socket (asynchronously, on `queue`).
    func stop() {
        queue.async { [self] in
            guard !stopped else { return }
            stopped = true
            if paused {
                paused = false
                source.resume()
            }
            source.cancel()
        }
    }

    private func acceptAll() {
        guard !stopped, !paused else { return }
        for _ in 0..<Self.acceptBudget {
            switch Syscall.accept(fd) {
            case .accepted(let client, let remote):
                admit(client, remote: remote)
            case .wouldBlock:
                return
            case .failed(let code):
                switch code {
                case ECONNABORTED, EPROTO, EPERM:
                    // The peer gave up between SYN and accept, or a firewall said no: next one.
                    continue
                default:
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM and anything unexpected: keep serving the
                    // existing connections and retry shortly instead of spinning or dying.
                    context.logger.error("accept failed; pausing", metadata: ["error": .string(SocketError("accept", errno: code).description)])
                    pause()
                    return
                }
            }
        }
        queue.async { [self] in acceptAll() }
    }

    private func pause() {
        paused = true
        source.suspend()
        queue.asyncAfter(deadline: .now() + Self.backoff) { [self] in
            guard paused, !stopped else { return }
            paused = false
            source.resume()
            acceptAll()
        }
    }

    private func admit(_ client: Int32, remote: String) {
        let loop = loops[nextLoop]
        nextLoop = (nextLoop + 1) % loops.count
        let registered = context.registry.register(maxConnections: context.configuration.limits.maxConnections) { id in
            Connection(id: id, fd: client, remoteAddress: remote, loop: loop, context: context)
        }
        guard let (connection, rejected) = registered else {
            Syscall.close(client)
            return
        }
        let now = monotonicNow()
        if rejected && now &- lastLimitWarning > 1_000_000_000 {
            // At most one warning per second: a flood of connections must not flood the log.
            lastLimitWarning = now
            context.logger.warning("connection limit reached", metadata: ["limit": .stringConvertible(context.configuration.limits.maxConnections)])
        }
        loop.execute {
            connection.start(
                rejecting: rejected
                    ? HTTPParseError(
                        status: 503, code: "service_unavailable",
                        message: "too many connections (limit \(self.context.configuration.limits.maxConnections))")
                    : nil)
        }
    }
}
