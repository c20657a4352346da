import Dispatch
import Logging
import Synchronization

/// What every connection of one server shares: immutable settings, the handler, the logger, and
/// the registry of live connections.
final class ServerContext: Sendable {
    let configuration: Server.Configuration
    let logger: Logger
    let handler: HTTPHandler
    /// (method, decoded path) → body limit of a streaming route; see `HTTPServer.init`.
    let streamingBody: (@Sendable (String, String) -> Int?)?
    let accessLog: AccessLog
    let registry = ConnectionRegistry()
    let parserLimits: HTTPParserLimits
    // Timeouts in nanoseconds, converted once.
    let headerRead: UInt64
    let bodyIdle: UInt64
    let keepAliveIdle: UInt64
    let writeIdle: UInt64
    let lingeringClose: UInt64

    init(
        configuration: Server.Configuration, logger: Logger, streamingBody: (@Sendable (String, String) -> Int?)? = nil,
        handler: @escaping HTTPHandler
    ) {
        self.configuration = configuration
        self.logger = logger
        self.handler = handler
        self.streamingBody = streamingBody
        accessLog = AccessLog(logger: logger)
        let limits = configuration.limits
        parserLimits = HTTPParserLimits(
            maxHeaderBytes: limits.maxHeaderBytes, maxHeaderCount: limits.maxHeaderCount, maxBodyBytes: limits.maxBodyBytes)
        let timeouts = configuration.timeouts
        headerRead = timeouts.headerRead.nanoseconds
        bodyIdle = timeouts.bodyIdle.nanoseconds
        keepAliveIdle = timeouts.keepAliveIdle.nanoseconds
        writeIdle = timeouts.writeIdle.nanoseconds
        lingeringClose = timeouts.lingeringClose.nanoseconds
    }
}

/// Live connections, for the maxConnections limit and for shutdown.
final class ConnectionRegistry: Sendable {
    /// Connections over the limit get a 503 through the normal write path (so the client can read
    /// it); at most this many at once, beyond which they are closed without a word.
    static let maxRejecting = 64

    private struct State {
        var connections: [Int: Connection] = [:]
        var active = 0
        var rejecting: Set<Int> = []
        var nextID = 0
        var shuttingDown = false
        var drainWaiters: [Int: CheckedContinuation<Bool, Never>] = [:]
        var nextWaiter = 0
    }

    private let state = Mutex(State())

    /// Registers a new connection made by `make`; nil when it should be dropped at once.
    func register(maxConnections: Int, _ make: (_ id: Int) -> Connection) -> (connection: Connection, rejected: Bool)? {
        state.withLock { s in
            if s.shuttingDown { return nil }
            let rejected = s.active >= maxConnections
            if rejected && s.rejecting.count >= Self.maxRejecting { return nil }
            let id = s.nextID
            s.nextID += 1
            let connection = make(id)
            s.connections[id] = connection
            if rejected { s.rejecting.insert(id) } else { s.active += 1 }
            return (connection, rejected)
        }
    }

    /// Called once per connection, after its file descriptor is closed.
    func connectionClosed(_ id: Int) {
        let waiters = state.withLock { s -> [CheckedContinuation<Bool, Never>] in
            guard s.connections.removeValue(forKey: id) != nil else { return [] }
            if s.rejecting.remove(id) == nil { s.active -= 1 }
            guard s.connections.isEmpty else { return [] }
            defer { s.drainWaiters = [:] }
            return Array(s.drainWaiters.values)
        }
        for waiter in waiters { waiter.resume(returning: true) }
    }

    /// Refuses new connections from now on and returns the live ones.
    func beginShutdown() -> [Connection] {
        state.withLock { s in
            s.shuttingDown = true
            return Array(s.connections.values)
        }
    }

    var liveConnections: [Connection] { state.withLock { Array($0.connections.values) } }

    var count: Int { state.withLock { $0.connections.count } }

    /// True once no connection is left, false if `timeout` passed first.
    func waitUntilEmpty(timeout: Duration) async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let token: Int? = state.withLock { s in
                if s.connections.isEmpty { return nil }
                let token = s.nextWaiter
                s.nextWaiter += 1
                s.drainWaiters[token] = continuation
                return token
            }
            guard let token else {
                continuation.resume(returning: true)
                return
            }
            DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(clamping: timeout.nanoseconds))) { [self] in
                let waiter = state.withLock { $0.drainWaiters.removeValue(forKey: token) }
                waiter?.resume(returning: false)
            }
        }
    }
}
