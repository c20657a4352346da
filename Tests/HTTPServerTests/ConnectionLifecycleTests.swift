import Testing

@testable import HTTPServer

/// The connection's lifecycle decisions, without sockets: each event's state and action.
@Suite struct ConnectionLifecycleTests {
    func opened() -> ConnectionLifecycle {
        var l = ConnectionLifecycle()
        #expect(l.registered(true) == .none)
        #expect(l.state == .open(intake: .accepting, clientClosed: false))
        return l
    }

    @Test func keepAliveConnectionLingersAfterItsLastResponse() {
        var l = opened()
        #expect(l.wantsInput(uploadPaused: nil, pipelineFull: false))
        #expect(!l.wantsInput(uploadPaused: nil, pipelineFull: true))
        #expect(l.stopIntake() == .updateReading)  // the request said Connection: close
        #expect(l.stopIntake() == .none)
        #expect(!l.wantsInput(uploadPaused: nil, pipelineFull: false))
        #expect(l.noFurtherRequests)
        #expect(l.finalResponseQueued() == .closeAfterFlush)
        #expect(!l.readsInput && l.writesOutput)
        #expect(l.outputFlushed(now: 42) == .linger)
        #expect(l.state == .lingering(since: 42))
        #expect(l.readsInput && !l.writesOutput && l.wantsInput(uploadPaused: nil, pipelineFull: true))
        #expect(l.endOfInput(idle: true, outputPending: false) == .tearDown)
        let closed = l.tearDown(), again = l.tearDown()
        #expect(closed && !again)  // closing twice closes nothing
    }

    @Test func halfClosedClientIsAnsweredThenClosedWithoutLingering() {
        var l = opened()
        #expect(l.endOfInput(idle: false, outputPending: false) == .updateReading)
        #expect(l.state == .open(intake: .stopped, clientClosed: true))
        #expect(!l.wantsInput(uploadPaused: false, pipelineFull: false))
        #expect(l.noFurtherRequests)
        #expect(l.finalResponseQueued() == .closeAfterFlush)
        #expect(l.outputFlushed(now: 1) == .tearDown)
    }

    @Test func endOfInputWhenIdleClosesNowOrAfterTheFlush() {
        var idle = opened()
        #expect(idle.endOfInput(idle: true, outputPending: false) == .tearDown)
        // With output still being written: close once it is flushed, without lingering.
        var flushing = opened()
        #expect(flushing.endOfInput(idle: true, outputPending: true) == .closeAfterFlush)
        #expect(flushing.state == .closingAfterFlush(clientClosed: true))
        #expect(flushing.outputFlushed(now: 5) == .tearDown)
    }

    @Test func gracefulShutdownAnswersWhatArrivedThenCloses() {
        var busy = opened()
        #expect(busy.shutdown(idle: false, outputPending: false) == .updateReading)
        #expect(busy.shuttingDown && !busy.acceptsRequests && busy.noFurtherRequests)
        var idle = opened()
        #expect(idle.shutdown(idle: true, outputPending: false) == .tearDown)
        var flushing = opened()
        #expect(flushing.shutdown(idle: true, outputPending: true) == .closeAfterFlush)
        #expect(flushing.state == .closingAfterFlush(clientClosed: false))
        #expect(flushing.outputFlushed(now: 9) == .linger)
        // A connection accepted during shutdown closes as soon as it registers.
        var late = ConnectionLifecycle()
        #expect(late.shutdown(idle: true, outputPending: false) == .none)
        #expect(late.registered(true) == .tearDown)
    }

    @Test func streamedBodyIsReadAfterIntakeStopsUnlessPausedOrClosed() {
        var l = opened()
        _ = l.stopIntake()
        #expect(l.wantsInput(uploadPaused: false, pipelineFull: true))
        #expect(!l.wantsInput(uploadPaused: true, pipelineFull: false))
        _ = l.endOfInput(idle: false, outputPending: false)
        #expect(!l.wantsInput(uploadPaused: false, pipelineFull: false))
    }

    @Test func failedRegistrationAndEventsAfterCloseDoNothing() {
        var l = ConnectionLifecycle()
        #expect(l.registered(false) == .none)
        let closedAgain = l.tearDown()
        #expect(l.state == .closed && !l.isRegistered && !closedAgain)
        #expect(l.finalResponseQueued() == .none)
        #expect(l.endOfInput(idle: true, outputPending: false) == .none)
        #expect(l.outputFlushed(now: 0) == .none)
        var never = ConnectionLifecycle()
        let closedNever = never.tearDown()
        #expect(!closedNever)  // never registered: nothing to deregister
    }
}
