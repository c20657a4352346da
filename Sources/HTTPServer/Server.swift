import Dispatch
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

public typealias HTTPHandler = @Sendable (HTTPRequest) async throws -> HTTPResponse

/// An HTTP/1.1 server on non-blocking POSIX sockets. A Dispatch source accepts connections and
/// spreads them over `configuration.ioThreads` epoll loops (IOLoop), which read, parse and write;
/// handlers run in Swift concurrency Tasks, so a slow handler never stalls other connections.
public final class Server: Sendable {
    public let configuration: Configuration
    private let context: ServerContext
    private let acceptQueue = DispatchQueue(label: "HTTPServer.accept")
    private let state = Mutex(State())

    private enum Lifecycle { case idle, running, stopping, stopped }

    private struct State {
        var lifecycle = Lifecycle.idle
        var listener: Listener?
        var loops: [IOLoop] = []
        var boundPort = 0
        var stopWaiters: [CheckedContinuation<Void, Never>] = []
        var signalSources: [SignalSourceBox] = []
    }

    /// Errors thrown by `handler` become a 500 with `{"error":{"code":"internal",...}}` (the error
    /// itself is logged, not sent).
    ///
    /// `streamingBody` is asked, once a request's header section is in and before its body is
    /// read, with the method and the percent-decoded path: a limit makes the request streaming
    /// (the handler starts at once with `request.bodyStream`, and the body may exceed
    /// `limits.maxBodyBytes` up to that limit); nil keeps it buffered. With a `Router`, pass
    /// `{ router.streamingLimit(method: $0, path: $1) }`.
    public init(
        configuration: Configuration, logger: Logger, streamingBody: (@Sendable (String, String) -> Int?)? = nil,
        handler: @escaping HTTPHandler
    ) {
        self.configuration = configuration
        context = ServerContext(configuration: configuration, logger: logger, streamingBody: streamingBody, handler: handler)
    }

    /// Binds and starts accepting; returns once the socket is listening.
    public func start() throws {
        // Belt and braces with MSG_NOSIGNAL: a write to a closed peer must never kill the process.
        signal(SIGPIPE, SIG_IGN)
        try state.withLock { s in
            guard s.lifecycle == .idle else { throw SocketError("server already started") }
            s.lifecycle = .running
        }
        let socket: (fd: Int32, port: Int)
        var loops: [IOLoop] = []
        do {
            for index in 0..<configuration.ioThreads {
                let loop = try IOLoop(index: index)
                loops.append(loop)
                try loop.start()
            }
            // Bound last, so that a failure above leaves no socket behind.
            socket = try makeListeningSocket(host: configuration.host, port: configuration.port, backlog: configuration.backlog)
        } catch {
            for loop in loops { loop.stop() }
            state.withLock { $0.lifecycle = .idle }
            throw error
        }
        let listener = Listener(fd: socket.fd, queue: acceptQueue, loops: loops, context: context)
        let stillRunning = state.withLock { s -> Bool in
            // shutdown() may have run meanwhile: it saw no listener and no loops to stop.
            guard s.lifecycle == .running else { return false }
            s.listener = listener
            s.loops = loops
            s.boundPort = socket.port
            return true
        }
        guard stillRunning else {
            Syscall.close(socket.fd)
            for loop in loops { loop.stop() }
            throw SocketError("server shut down while starting")
        }
        listener.start()
        context.logger.info("listening", metadata: ["host": .string(configuration.host), "port": .stringConvertible(socket.port)])
    }

    /// The port actually bound (useful with port 0); 0 before `start()`.
    public var boundPort: Int { state.withLock { $0.boundPort } }

    /// Stops accepting, lets in-flight requests finish (up to `timeouts.shutdownGrace`), closes idle
    /// keep-alive connections, and returns when every connection is closed. Safe to call repeatedly.
    public func shutdown() async {
        enum Step { case run(Listener?), wait, done }
        let step: Step = state.withLock { s in
            switch s.lifecycle {
            case .idle:
                s.lifecycle = .stopped
                return .done
            case .running:
                s.lifecycle = .stopping
                defer { s.listener = nil }
                return .run(s.listener)
            case .stopping:
                return .wait
            case .stopped:
                return .done
            }
        }
        switch step {
        case .done:
            finishStop()
            return
        case .wait:
            await waitUntilStopped()
            return
        case .run(let listener):
            context.logger.info("shutting down", metadata: ["connections": .stringConvertible(context.registry.count)])
            listener?.stop()
            for connection in context.registry.beginShutdown() {
                connection.loop.execute { connection.beginShutdown() }
            }
            if !(await context.registry.waitUntilEmpty(timeout: configuration.timeouts.shutdownGrace)) {
                let remaining = context.registry.liveConnections
                context.logger.warning("shutdown grace expired; closing connections", metadata: ["connections": .stringConvertible(remaining.count)])
                for connection in remaining {
                    connection.loop.execute { connection.forceClose() }
                }
                _ = await context.registry.waitUntilEmpty(timeout: .seconds(5))
            }
            finishStop()
            context.logger.info("stopped")
        }
    }

    private func finishStop() {
        let (waiters, sources, loops) = state.withLock { s -> ([CheckedContinuation<Void, Never>], [SignalSourceBox], [IOLoop]) in
            s.lifecycle = .stopped
            defer {
                s.stopWaiters = []
                s.signalSources = []
                s.loops = []
            }
            return (s.stopWaiters, s.signalSources, s.loops)
        }
        // Connections that outlived the grace are closed by their loop as it stops.
        for loop in loops { loop.stop() }
        for box in sources { box.source.cancel() }
        for waiter in waiters { waiter.resume() }
    }

    /// SIGTERM and SIGINT start `shutdown()`. The default actions are ignored first, then Dispatch
    /// signal sources observe the signals (handlers run on a queue, not in signal context).
    public func installSignalHandlers() {
        for number in [SIGTERM, SIGINT] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: acceptQueue)
            source.setEventHandler { [weak self] in
                guard let self else { return }
                self.context.logger.info("signal received; shutting down", metadata: ["signal": .stringConvertible(number)])
                Task { await self.shutdown() }
            }
            source.activate()
            let box = SignalSourceBox(source: source)
            state.withLock { $0.signalSources.append(box) }
        }
    }

    /// Returns once `shutdown()` has completed.
    public func waitUntilStopped() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let stopped = state.withLock { s in
                if s.lifecycle == .stopped { return true }
                s.stopWaiters.append(continuation)
                return false
            }
            if stopped { continuation.resume() }
        }
    }
}

/// Carries a signal source across isolation domains.
private struct SignalSourceBox: @unchecked Sendable {
    // @unchecked Sendable: libdispatch objects are thread-safe (cancel may be called from any
    // thread); the Swift overlay on Linux just does not declare the conformance.
    let source: any DispatchSourceSignal
}
