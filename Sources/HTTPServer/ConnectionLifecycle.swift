/// The stages of a connection as one value, each with its own data. `Connection` reports each
/// event and performs the action returned (the style of swift-nio's state machines): the decisions
/// live here, the I/O there. Pure — no syscalls, no clock reads — so it is tested without sockets.
struct ConnectionLifecycle: Equatable {
    enum State: Equatable {
        /// Accepted, not registered with the I/O loop yet.
        case new
        /// Serving requests. `intake` says whether further requests are parsed; `clientClosed` that
        /// the client half-closed (EOF was read): what it sent is still answered.
        case open(intake: Intake, clientClosed: Bool)
        /// The final response is queued: no request is read any more; close once it is flushed.
        case closingAfterFlush(clientClosed: Bool)
        /// FIN sent at `since` (uptime nanoseconds); input is read and discarded until EOF or the
        /// linger deadline, so that unread data does not make the kernel answer with RST.
        case lingering(since: UInt64)
        case closed
    }

    enum Intake: Equatable {
        case accepting
        /// No further request will be parsed (the last one asked for close, the client half-closed,
        /// a request failed, or the server shuts down); a streamed body in progress is still read.
        case stopped
    }

    enum Action: Equatable {
        case none
        /// Close the descriptor now; what is in flight fails.
        case tearDown
        /// Drop unanswered requests, stop reading and flush the output (then `outputFlushed`).
        case closeAfterFlush
        /// Send FIN and keep draining input until EOF or the linger deadline.
        case linger
        /// Read interest may have changed: re-evaluate it (`wantsInput`).
        case updateReading
    }

    private(set) var state = State.new
    /// A graceful server shutdown was asked for: what was received is answered, nothing is kept alive.
    private(set) var shuttingDown = false

    /// Requests may be parsed, handled and answered.
    var isOpen: Bool { if case .open = state { true } else { false } }
    /// Further requests are parsed.
    var acceptsRequests: Bool { if case .open(.accepting, _) = state { true } else { false } }
    /// Output is still written (open, or flushing the final response).
    var writesOutput: Bool {
        switch state {
        case .open, .closingAfterFlush: true
        default: false
        }
    }
    /// Input is read: to parse requests, or to discard it while lingering.
    var readsInput: Bool {
        switch state {
        case .open, .lingering: true
        default: false
        }
    }
    var isLingering: Bool { if case .lingering = state { true } else { false } }
    /// Registered with the I/O loop (its interest may be updated).
    var isRegistered: Bool { state != .new && state != .closed }
    var clientClosed: Bool {
        switch state {
        case .open(_, let closed), .closingAfterFlush(let closed): closed
        case .lingering, .new, .closed: false
        }
    }
    /// The response being written is the last one: no request after it will be answered.
    var noFurtherRequests: Bool { shuttingDown || clientClosed || !acceptsRequests }

    /// Registration with the loop succeeded (`false`: it failed and the descriptor is closed).
    mutating func registered(_ succeeded: Bool) -> Action {
        guard state == .new else { return .none }
        guard succeeded else {
            state = .closed
            return .none
        }
        state = .open(intake: .accepting, clientClosed: false)
        return shuttingDown ? .tearDown : .none
    }

    /// Graceful shutdown. `idle`: no request is owed a response.
    mutating func shutdown(idle: Bool, outputPending: Bool) -> Action {
        shuttingDown = true
        guard case .open(_, let closed) = state else { return .none }
        guard idle else {
            state = .open(intake: .stopped, clientClosed: closed)
            return .updateReading
        }
        guard outputPending else { return .tearDown }
        state = .closingAfterFlush(clientClosed: closed)
        return .closeAfterFlush
    }

    /// No further request is parsed after the current one.
    mutating func stopIntake() -> Action {
        guard case .open(.accepting, let closed) = state else { return .none }
        state = .open(intake: .stopped, clientClosed: closed)
        return .updateReading
    }

    /// EOF was read. `idle`: no request is owed a response.
    mutating func endOfInput(idle: Bool, outputPending: Bool) -> Action {
        switch state {
        case .lingering:
            return .tearDown
        case .open:
            // Nothing more owed beyond what is being flushed (a partial request is dropped).
            guard idle else {
                state = .open(intake: .stopped, clientClosed: true)
                return .updateReading
            }
            guard outputPending else { return .tearDown }
            state = .closingAfterFlush(clientClosed: true)
            return .closeAfterFlush
        case .closingAfterFlush:
            state = .closingAfterFlush(clientClosed: true)
            return .none
        case .new, .closed:
            return .none
        }
    }

    /// The final response is queued (it said `Connection: close`, or nothing follows it).
    mutating func finalResponseQueued() -> Action {
        guard case .open(_, let closed) = state else { return .none }
        state = .closingAfterFlush(clientClosed: closed)
        return .closeAfterFlush
    }

    /// All output was written. While closing: linger, or close at once if the client has closed.
    mutating func outputFlushed(now: UInt64) -> Action {
        guard case .closingAfterFlush(let closed) = state else { return .none }
        if closed { return .tearDown }
        state = .lingering(since: now)
        return .linger
    }

    /// The descriptor is being closed; false when there was nothing to close (never registered,
    /// or closed already).
    mutating func tearDown() -> Bool {
        guard isRegistered else { return false }
        state = .closed
        return true
    }

    /// Whether the socket should be read now. `uploadPaused`: nil unless a streamed request body is
    /// being read, then whether its consumer asked for a pause; `pipelineFull`: enough requests wait.
    func wantsInput(uploadPaused: Bool?, pipelineFull: Bool) -> Bool {
        switch state {
        case .open(let intake, let closed):
            guard !closed else { return false }
            if let uploadPaused { return !uploadPaused }
            return intake == .accepting && !pipelineFull
        case .lingering:
            return true
        case .new, .closingAfterFlush, .closed:
            return false
        }
    }
}
