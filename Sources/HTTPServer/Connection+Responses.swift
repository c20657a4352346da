import Dispatch
import Logging

/// Writing responses in request order, streaming bodies, and the output buffer's flushing.
/// Runs on the loop thread like the rest of `Connection`.
extension Connection {
    func responseReady(_ sequence: Int, _ response: HTTPResponse) {
        guard lifecycle.isOpen, let index = slots.firstIndex(where: { $0.sequence == sequence }) else { return }
        // Already answered (the streamed body failed and its error became the response).
        guard slots[index].response == nil else { return }
        if let current = upload, current.sequence == sequence {
            // Answered before its streamed body ended: the rest is discarded until the response
            // goes out, then the connection closes (`Connection: close`) rather than reading a
            // possibly huge remainder nobody wants.
            abandonUpload(sequence)
            slots[index].forceClose = true
        }
        slots[index].response = response
        slots[index].task = nil
        pump()
        rearmTimer()
    }

    /// Writes every response that is ready, in order, then lets parsing continue if it was paused.
    func pump() {
        guard pumpState == .idle else {
            pumpState = .runAgain
            return
        }
        defer { pumpState = .idle }
        repeat {
            pumpState = .running
            while lifecycle.isOpen, stream == nil, let slot = slots.first, let response = slot.response {
                write(response, for: slot)
            }
            if lifecycle.acceptsRequests && !interest.read {
                updateReading()
                if interest.read { processInput() }
            }
        } while pumpState == .runAgain
        flush()
    }

    func write(_ response: HTTPResponse, for slot: Slot) {
        // A 1xx is not a final response and anything outside 200...999 cannot be written.
        let status = (200...999).contains(response.status) ? response.status : 500
        let isHead = slot.method == "HEAD"
        let noBody = ResponseEncoding.statusHasNoBody(status)
        var close =
            slot.forceClose || !slot.keepAlive || response.headers.hasToken("close", in: "Connection")
            || (lifecycle.noFurtherRequests && slots.count == 1)
        var response = response
        // Echoed so that a client can quote it when reporting a problem (it is in the access log).
        if !response.headers.contains("X-Request-Id") { response.headers.add("X-Request-Id", slot.requestID) }
        switch response.body {
        case .bytes(let body):
            let head = ResponseEncoding.head(
                status: status, headers: response.headers, framing: noBody ? .none : .length(body.count), close: close,
                keepAliveHTTP10: slot.http10 && !close, date: loop.date())
            enqueue(head)
            let sendBody = !isHead && !noBody
            if sendBody { enqueue(body) }
            completeSlot(status: status, bytes: head.count + (sendBody ? body.count : 0), close: close)
        case .stream(let body):
            if isHead || noBody {
                let head = ResponseEncoding.head(
                    status: status, headers: response.headers, framing: noBody ? .none : (slot.http10 ? .untilClose : .chunked),
                    close: close || slot.http10, keepAliveHTTP10: false, date: loop.date())
                enqueue(head)
                completeSlot(status: status, bytes: head.count, close: close || slot.http10)
                return
            }
            // HTTP/1.0 has no chunked coding: the body then ends when the connection closes.
            let chunked = !slot.http10
            if !chunked { close = true }
            let head = ResponseEncoding.head(
                status: status, headers: response.headers, framing: chunked ? .chunked : .untilClose, close: close,
                keepAliveHTTP10: false, date: loop.date())
            enqueue(head)
            startStream(body, chunked: chunked, close: close, status: status, headBytes: head.count)
        }
    }

    func completeSlot(status: Int, bytes: Int, close: Bool) {
        let slot = slots.removeFirst()
        requestsServed += 1
        let now = monotonicNow()
        lastActivity = now
        context.accessLog.record(
            requestID: slot.requestID, method: slot.method, path: slot.rawPath, status: status, bytes: bytes,
            durationNanoseconds: now &- slot.startedAt, remote: remoteAddress)
        if close || (slots.isEmpty && (lifecycle.clientClosed || lifecycle.shuttingDown)) {
            beginClosing()
        }
    }

    // MARK: - Streaming

    func startStream(_ body: @escaping @Sendable (ResponseBodyWriter) async throws -> Void, chunked: Bool, close: Bool, status: Int, headBytes: Int) {
        nextStreamID += 1
        let streamID = nextStreamID
        let writer = ResponseBodyWriter { [self] bytes in try await streamWrite(streamID, bytes) }
        stream = StreamState(id: streamID, chunked: chunked, close: close, status: status, bytes: headBytes, task: nil)
        stream?.task = Task { [self] in
            var failure: (any Error)?
            do {
                try await body(writer)
            } catch {
                failure = error
            }
            let result = failure.map { String(describing: $0) }
            loop.execute { self.streamFinished(streamID, failure: result) }
        }
    }

    func streamWrite(_ streamID: Int, _ bytes: [UInt8]) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            loop.execute { self.acceptChunk(streamID, bytes, continuation) }
        }
    }

    /// Queues one chunk; the writer resumes once everything queued reached the kernel (backpressure).
    func acceptChunk(_ streamID: Int, _ bytes: [UInt8], _ continuation: CheckedContinuation<Void, any Error>) {
        guard lifecycle.isOpen, let current = stream, current.id == streamID else {
            continuation.resume(throwing: ClientDisconnected())
            return
        }
        var framed = bytes.count
        if current.chunked {
            let size = Array((String(bytes.count, radix: 16) + "\r\n").utf8)
            enqueue(size)
            enqueue(bytes)
            enqueue([0x0D, 0x0A])
            framed += size.count + 2
        } else {
            enqueue(bytes)
        }
        stream?.bytes += framed
        flush()
        if !lifecycle.isOpen {
            continuation.resume(throwing: ClientDisconnected())
        } else if output.isEmpty {
            continuation.resume()
        } else {
            drainWaiters.append(continuation)
        }
        rearmTimer()
    }

    func streamFinished(_ streamID: Int, failure: String?) {
        guard lifecycle.isOpen, let current = stream, current.id == streamID else { return }
        stream = nil
        if let failure {
            // Headers are gone already: the only honest signal left is an incomplete body.
            context.logger.warning(
                "streaming response failed", metadata: ["request_id": .string(slots.first?.requestID ?? "-"), "error": .string(failure)])
            teardown()
            return
        }
        var bytes = current.bytes
        if current.chunked {
            enqueue(Array("0\r\n\r\n".utf8))
            bytes += 5
        }
        completeSlot(status: current.status, bytes: bytes, close: current.close)
        pump()
        rearmTimer()
    }

    // MARK: - Writing

    func enqueue(_ bytes: [UInt8]) {
        if output.isEmpty { lastWriteProgress = monotonicNow() }
        output.append(bytes)
    }

    func handleWritable() {
        guard lifecycle.writesOutput else {
            disarmWrite()
            return
        }
        flush()
        rearmTimer()
    }

    func flush() {
        guard lifecycle.writesOutput else { return }
        if !output.isEmpty {
            let (sent, outcome) = output.send(to: fd)
            if sent > 0 { lastWriteProgress = monotonicNow() }
            switch outcome {
            case .failed:
                teardown()
                return
            case .wouldBlock:
                armWrite()
                return
            case .drained:
                break
            }
        }
        disarmWrite()
        if !drainWaiters.isEmpty {
            let waiters = drainWaiters
            drainWaiters = []
            for waiter in waiters { waiter.resume() }
        }
        perform(lifecycle.outputFlushed(now: monotonicNow()))
    }

    func armWrite() {
        guard !interest.write, lifecycle.isRegistered else { return }
        interest.write = true
        loop.update(id, reading: interest.read, writing: true)
    }

    func disarmWrite() {
        guard interest.write, lifecycle.isRegistered else { return }
        interest.write = false
        loop.update(id, reading: interest.read, writing: false)
    }
}
