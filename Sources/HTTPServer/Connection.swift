import Dispatch
import Logging
import Synchronization

/// One client connection: reads and parses requests, runs handlers in Tasks, writes responses
/// strictly in request order, and enforces the timeouts.
///
/// Threading: all mutable state is confined to the thread of `loop`, which reports this
/// connection's readiness and deadlines. Handler Tasks never touch it; they hand back with
/// `loop.execute`. Responses and timeouts live in Connection+Responses.swift and
/// Connection+Timeouts.swift.
final class Connection: IOLoopClient, @unchecked Sendable {
    // @unchecked Sendable: see the type comment; every `var` is only accessed on the loop thread.

    /// What the socket is registered for with the loop (mirrors the kernel's epoll interest, so a
    /// change costs a syscall only when it changes something).
    struct Interest {
        var read = true
        /// Only while output is pending: an idle socket is always writable.
        var write = false
    }

    /// The response pump's re-entrancy guard: a response that becomes ready while pumping is
    /// picked up by the running pump instead of a nested one.
    enum PumpState {
        case idle
        case running
        case runAgain
    }

    enum TimeoutAction {
        case closeSilently
        case requestTimeout
        case abort
    }

    /// A parsed request waiting for (or holding) its response, in request order.
    struct Slot {
        var method: String
        var rawPath: Substring
        var requestID: String
        var keepAlive: Bool
        var http10: Bool
        var startedAt: UInt64
        var sequence: Int
        var response: HTTPResponse?
        var task: Task<Void, Never>?
        var forceClose: Bool
    }

    /// The streaming response currently being written (always for `slots[0]`).
    struct StreamState {
        var id: Int
        var chunked: Bool
        var close: Bool
        var status: Int
        var bytes: Int
        var task: Task<Void, Never>?
    }

    /// The request body being streamed to a handler (a streaming route; see RequestBodyStream).
    /// While set, the parser is inside that body and the next request is not parsed yet.
    struct Upload {
        var id: Int
        var sequence: Int
        var channel: RequestBodyChannel
        var keepAlive: Bool
        /// Reading is suspended: the consumer has more than `RequestBodyChannel.highWater` queued.
        var paused: Bool
    }

    let id: Int
    let fd: Int32
    let loop: IOLoop
    let context: ServerContext
    let remoteAddress: String

    var lifecycle = ConnectionLifecycle()
    var interest = Interest()
    var parser: HTTPRequestParser
    var slots: [Slot] = []
    var nextSequence = 0
    var output = OutputBuffer()
    var stream: StreamState?
    var nextStreamID = 0
    var upload: Upload?
    var nextUploadID = 0
    var drainWaiters: [CheckedContinuation<Void, any Error>] = []
    var pumpState = PumpState.idle
    // Times in DispatchTime uptime nanoseconds.
    var lastActivity: UInt64
    var headStartedAt: UInt64?
    var currentHeadAt: UInt64 = 0
    var lastBodyProgress: UInt64 = 0
    var lastBodyCount = 0
    var lastWriteProgress: UInt64 = 0
    var timerArmedFor: UInt64?
    var requestsServed = 0

    init(id: Int, fd: Int32, remoteAddress: String, loop: IOLoop, context: ServerContext) {
        self.id = id
        self.fd = fd
        self.remoteAddress = remoteAddress
        self.loop = loop
        self.context = context
        parser = HTTPRequestParser(limits: context.parserLimits)
        parser.streamingLimit = context.streamingBody
        lastActivity = monotonicNow()
        Connection.liveObjects.add(1, ordering: .relaxed)
    }

    deinit {
        Connection.liveObjects.subtract(1, ordering: .relaxed)
    }

    /// Connection objects alive in the process; lets tests prove that closed connections are freed
    /// (a retain cycle through a closure the loop holds would keep them).
    static let liveObjects = Atomic<Int>(0)

    // MARK: - Lifecycle (all on the loop thread)

    /// Registers with the loop. With `rejecting`, answers that error to the first request and closes.
    func start(rejecting: HTTPParseError? = nil) {
        guard lifecycle.state == .new else { return }
        let registered = loop.register(self, fd: fd, token: id, reading: true, writing: false)
        let action = lifecycle.registered(registered)
        guard registered else {
            // epoll_ctl failed (ENOMEM, ENOSPC) or the I/O thread already stopped: nothing can serve it.
            context.logger.warning("connection dropped: its I/O thread could not watch it", metadata: ["remote": .string(remoteAddress)])
            closeDescriptor()
            return
        }
        perform(action)
        guard lifecycle.isOpen else { return }
        if let rejecting { fail(rejecting) }
        rearmTimer()
    }

    /// Carries out what the lifecycle decided.
    func perform(_ action: ConnectionLifecycle.Action) {
        switch action {
        case .none: break
        case .tearDown: teardown()
        case .closeAfterFlush: closeAfterFlush()
        case .linger: linger()
        case .updateReading: updateReading()
        }
    }

    /// No request is owed a response.
    var isIdle: Bool { slots.isEmpty && stream == nil }

    /// Graceful shutdown: answer what was already received (the last response says
    /// `Connection: close`), then close. Idle connections close at once.
    func beginShutdown() {
        perform(lifecycle.shutdown(idle: isIdle, outputPending: !output.isEmpty))
    }

    /// Cuts the connection now (shutdown grace expired); stream writers throw.
    func forceClose() {
        teardown()
    }

    func teardown() {
        guard lifecycle.tearDown() else { return }
        failUpload(ClientDisconnected())
        let waiters = drainWaiters
        drainWaiters = []
        for waiter in waiters { waiter.resume(throwing: ClientDisconnected()) }
        // Nobody will read these responses any more; let handlers notice through cancellation.
        stream?.task?.cancel()
        for slot in slots { slot.task?.cancel() }
        slots.removeAll()
        // Deregistered before the close, so the loop never reports for a reused descriptor number.
        loop.deregister(id)
        closeDescriptor()
    }

    func closeDescriptor() {
        Syscall.close(fd)
        context.registry.connectionClosed(id)
    }

    func handleHangup() {
        teardown()
    }

    /// The last response is queued: stop reading requests, flush, then linger and close.
    func beginClosing() {
        perform(lifecycle.finalResponseQueued())
    }

    func closeAfterFlush() {
        failUpload(ClientDisconnected())
        for slot in slots { slot.task?.cancel() }
        slots.removeAll()
        updateReading()
        flush()
    }

    /// Sends FIN and keeps reading (discarding) for a short while: closing with unread data would
    /// make the kernel send RST, which can destroy the response before the client reads it.
    func linger() {
        Syscall.shutdownWrite(fd)
        updateReading()
        rearmTimer()
    }

    /// Stops parsing further requests after the current one.
    func stopIntake() {
        perform(lifecycle.stopIntake())
    }

    // MARK: - Reading

    func handleReadable() {
        guard lifecycle.readsInput, interest.read else { return }
        for _ in 0..<16 {
            switch Syscall.read(fd, into: loop.scratch) {
            case .done(let n):
                lastActivity = monotonicNow()
                if lifecycle.isLingering { continue }
                parser.feed(UnsafeRawBufferPointer(rebasing: loop.scratch[0..<n]))
                processInput()
                if !lifecycle.isOpen || !interest.read {
                    rearmTimer()
                    return
                }
            case .wouldBlock:
                rearmTimer()
                return
            case .eof:
                handleEOF()
                return
            case .failed:
                teardown()
                return
            }
        }
        // Budget used up: let the loop's other connections run; readiness is level-triggered, so the
        // loop reports this one again.
        rearmTimer()
    }

    func handleEOF() {
        failUpload(ClientDisconnected())
        // A half-closed client is still answered what it sent, then the connection closes.
        perform(lifecycle.endOfInput(idle: isIdle, outputPending: !output.isEmpty))
        rearmTimer()
    }

    func processInput() {
        // An upload in progress is read to its end even when no further request will be parsed.
        while lifecycle.isOpen && (lifecycle.acceptsRequests || upload != nil) {
            if upload == nil && slots.count >= context.configuration.limits.maxPipelinedRequests {
                updateReading()
                break
            }
            let event: HTTPParserEvent?
            do {
                event = try parser.next()
            } catch {
                fail(error)
                return
            }
            guard let event else { break }
            switch event {
            case .head(let head):
                headStartedAt = nil
                currentHeadAt = monotonicNow()
                lastBodyProgress = currentHeadAt
                lastBodyCount = parser.bodyBytesReceived
                sendContinueIfExpected(head)
                if let limit = head.streamingLimit { startUpload(head, limit: limit) }
            case .request(var request):
                request.remoteAddress = remoteAddress
                dispatch(request)
            case .bodyChunk(let bytes):
                deliverUpload(bytes)
            case .bodyEnd:
                finishUpload()
            }
        }
        let now = monotonicNow()
        switch parser.phase {
        case .head:
            if headStartedAt == nil { headStartedAt = now }
        case .body:
            if parser.bodyBytesReceived != lastBodyCount {
                lastBodyCount = parser.bodyBytesReceived
                lastBodyProgress = now
            }
        case .idle:
            headStartedAt = nil
        }
    }

    /// `Expect: 100-continue` is answered as soon as the head is in, unless earlier pipelined
    /// responses are still owed (an interim response must not overtake them) or body bytes already
    /// arrived (the client did not wait).
    func sendContinueIfExpected(_ head: HTTPRequestHead) {
        guard head.expectsContinue, head.framing != .none, slots.isEmpty, stream == nil, parser.bufferedByteCount == 0 else {
            return
        }
        enqueue(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))
        flush()
    }

    @discardableResult
    func dispatch(_ request: HTTPRequest, streaming: Bool = false) -> (sequence: Int, keepAlive: Bool) {
        let keepAlive = request.wantsKeepAlive && !lifecycle.shuttingDown
        // A streamed body still has to be read: parsing stops at its end (finishUpload).
        if !keepAlive && !streaming { stopIntake() }
        let sequence = nextSequence
        nextSequence += 1
        let handler = context.handler
        let logger = context.logger
        let task = Task { [self] in
            let response = await Connection.respond(handler, request, logger)
            loop.execute { self.responseReady(sequence, response) }
        }
        slots.append(
            Slot(
                method: request.method, rawPath: request.rawPath, requestID: request.requestID, keepAlive: keepAlive,
                http10: request.version == "HTTP/1.0", startedAt: currentHeadAt, sequence: sequence, response: nil, task: task,
                forceClose: false
            ))
        return (sequence, keepAlive)
    }

    // MARK: - Streaming request bodies

    /// A streaming route's head is in: start its handler now, with the body to come as a stream.
    func startUpload(_ head: HTTPRequestHead, limit: Int) {
        nextUploadID += 1
        let uploadID = nextUploadID
        let channel = RequestBodyChannel { [weak self] in
            guard let self else { return }
            self.loop.execute { self.uploadDrained(uploadID) }
        }
        var request = HTTPRequest(method: head.method, target: head.target, version: head.version, headers: head.headers)
        request.remoteAddress = remoteAddress
        let expected: Int? = if case .length(let n) = head.framing { n } else if head.framing == .none { 0 } else { nil }
        request.bodyStream = RequestBodyStream(channel: channel, expectedLength: expected)
        let (sequence, keepAlive) = dispatch(request, streaming: true)
        upload = Upload(id: uploadID, sequence: sequence, channel: channel, keepAlive: keepAlive, paused: false)
    }

    func deliverUpload(_ bytes: [UInt8]) {
        guard let current = upload else { return }
        if current.channel.yield(bytes) {
            upload?.paused = true
            updateReading()
        }
    }

    func finishUpload() {
        guard let current = upload else { return }
        upload = nil
        current.channel.finish()
        if !current.keepAlive { stopIntake() }
        updateReading()
    }

    /// The consumer caught up: read again (the body idle timeout restarts now).
    func uploadDrained(_ uploadID: Int) {
        guard lifecycle.isOpen, let current = upload, current.id == uploadID, current.paused else { return }
        upload?.paused = false
        lastBodyProgress = monotonicNow()
        updateReading()
        rearmTimer()
    }

    /// The handler answered before the body ended: the rest of the body is read and discarded
    /// until that response is written, after which the connection closes.
    func abandonUpload(_ sequence: Int) {
        guard let current = upload, current.sequence == sequence else { return }
        current.channel.abandon()
        if current.paused {
            upload?.paused = false
            lastBodyProgress = monotonicNow()
            updateReading()
        }
    }

    func failUpload(_ error: any Error) {
        guard let current = upload else { return }
        upload = nil
        current.channel.fail(error)
    }

    static func respond(_ handler: HTTPHandler, _ request: HTTPRequest, _ logger: Logger) async -> HTTPResponse {
        do {
            return try await handler(request)
        } catch {
            // The description stays in the log: it may name files, hosts or internals.
            logger.error("handler failed", metadata: ["request_id": .string(request.requestID), "error": .string(String(describing: error))])
            return .error(500, code: "internal", message: "internal server error (request id \(request.requestID))")
        }
    }

    /// A request that cannot be served: answer `error` after the earlier responses, then close.
    func fail(_ error: HTTPParseError) {
        if let current = upload {
            failUpload(error)
            // The streaming handler has not answered yet: the error becomes its response.
            if let index = slots.firstIndex(where: { $0.sequence == current.sequence }), slots[index].response == nil {
                slots[index].task?.cancel()
                slots[index].task = nil
                slots[index].response = .error(error.status, code: error.code, message: error.message)
                slots[index].forceClose = true
                stopIntake()
                pump()
                return
            }
        }
        stopIntake()
        let sequence = nextSequence
        nextSequence += 1
        slots.append(
            Slot(
                method: "-", rawPath: "-", requestID: HTTPRequest.generateRequestID(), keepAlive: false, http10: false,
                startedAt: headStartedAt ?? monotonicNow(), sequence: sequence,
                response: .error(error.status, code: error.code, message: error.message), task: nil, forceClose: true
            ))
        pump()
    }

    /// Suspends or resumes the read source to match the state: paused while enough requests are
    /// waiting (pipelining backpressure), after the last request, and after EOF.
    func updateReading() {
        guard lifecycle.isRegistered else { return }
        let pipelineFull = slots.count >= context.configuration.limits.maxPipelinedRequests
        let shouldRead = lifecycle.wantsInput(uploadPaused: upload?.paused, pipelineFull: pipelineFull)
        if shouldRead && !interest.read {
            interest.read = true
            // Bytes that already sit in the parser were read while paused; their head deadline
            // starts now, not when they arrived. Bytes still in the kernel are reported by the loop.
            headStartedAt = nil
            loop.update(id, reading: true, writing: interest.write)
        } else if !shouldRead && interest.read {
            interest.read = false
            loop.update(id, reading: false, writing: interest.write)
        }
    }
}
