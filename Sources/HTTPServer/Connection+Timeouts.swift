import Dispatch

/// Deadlines: the loop's timer heap holds the earliest deadline of the connection's current state.
/// Runs on the loop thread like the rest of `Connection`.
extension Connection {
    /// The next deadline that applies in the current state, if any. Handlers are never timed.
    func deadline() -> (at: UInt64, action: TimeoutAction)? {
        switch lifecycle.state {
        case .new, .closed:
            return nil
        case .lingering(let since):
            return (since &+ context.lingeringClose, .closeSilently)
        case .open, .closingAfterFlush:
            break
        }
        if !output.isEmpty { return (lastWriteProgress &+ context.writeIdle, .abort) }
        guard lifecycle.isOpen, interest.read, lifecycle.acceptsRequests || upload != nil else { return nil }
        switch parser.phase {
        case .head:
            return ((headStartedAt ?? monotonicNow()) &+ context.headerRead, .requestTimeout)
        case .body:
            return (lastBodyProgress &+ context.bodyIdle, .requestTimeout)
        case .idle:
            guard slots.isEmpty, stream == nil else { return nil }
            // A connection that never sent a byte gets the header deadline, an idle keep-alive one the idle one.
            return (lastActivity &+ (requestsServed == 0 ? context.headerRead : context.keepAliveIdle), .closeSilently)
        }
    }

    /// Arms the timer for the current deadline if it is earlier than the armed one. A later
    /// deadline is handled lazily: the early firing re-evaluates and re-arms.
    func rearmTimer() {
        guard let (at, _) = deadline() else { return }
        if let armed = timerArmedFor, armed <= at { return }
        arm(at)
    }

    func arm(_ at: UInt64) {
        timerArmedFor = at
        loop.schedule(id, at: at)
    }

    func timerFired(at: UInt64) {
        // Superseded schedules still fire; only the one armed last counts.
        guard timerArmedFor == at else { return }
        timerArmedFor = nil
        guard lifecycle.state != .closed, let (at, action) = deadline() else { return }
        if monotonicNow() < at {
            arm(at)
            return
        }
        switch action {
        case .closeSilently, .abort:
            teardown()
        case .requestTimeout:
            let seconds = parser.phase == .head ? context.configuration.timeouts.headerRead : context.configuration.timeouts.bodyIdle
            let what = parser.phase == .head ? "request header not received within" : "no request body data for"
            fail(HTTPParseError(status: 408, code: "request_timeout", message: "\(what) \(seconds)"))
            rearmTimer()
        }
    }
}
