import Foundation
import Synchronization
import Testing

@testable import HTTPServer

/// The epoll loop on its own: cross-thread work, readiness, timers, hang-ups, stopping.
extension HTTPServerTests {
    @Suite struct Loop {
        /// Records what the loop reported, and on which thread.
        final class Recorder: IOLoopClient, @unchecked Sendable {
            // @unchecked Sendable: `events` is a Mutex; the rest is immutable.
            let loop: IOLoop
            let token: Int
            let fd: Int32
            let events = Mutex<[String]>([])

            init(loop: IOLoop, token: Int, fd: Int32) {
                self.loop = loop
                self.token = token
                self.fd = fd
            }

            func handleReadable() {
                var byte: UInt8 = 0
                let n = read(fd, &byte, 1)
                events.withLock { $0.append(n == 1 ? "read \(Character(UnicodeScalar(byte)))" : "read \(n)") }
            }

            func handleWritable() {
                events.withLock { $0.append("writable") }
                loop.update(token, reading: true, writing: false)
            }

            func handleHangup() {
                events.withLock { $0.append("hangup") }
                loop.deregister(token)
            }

            func timerFired(at: UInt64) {
                events.withLock { $0.append("timer \(at) late \(monotonicNow() >= at)") }
            }
        }

        static func socketPair() throws -> (Int32, Int32) {
            var fds: [Int32] = [0, 0]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else { throw TestError.failure("socketpair") }
            _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
            return (fds[0], fds[1])
        }

        @Test func workFromManyThreadsRunsOnceEachOnTheLoopThread() async throws {
            let loop = try IOLoop(index: 0)
            try loop.start()
            defer { loop.stop() }
            let threads = Mutex<Set<UInt>>([])
            let count = Atomic<Int>(0)
            try await blocking {
                DispatchQueue.concurrentPerform(iterations: 4) { _ in
                    for _ in 0..<1000 {
                        loop.execute {
                            threads.withLock { _ = $0.insert(UInt(pthread_self())) }
                            count.add(1, ordering: .relaxed)
                        }
                    }
                }
            }
            try await eventually { count.load(ordering: .relaxed) == 4000 }
            #expect(count.load(ordering: .relaxed) == 4000)
            #expect(threads.withLock { $0.count } == 1)
        }

        @Test func readinessWritabilityAndTimersInDeadlineOrder() async throws {
            let loop = try IOLoop(index: 0)
            try loop.start()
            defer { loop.stop() }
            let (mine, peer) = try Self.socketPair()
            defer { close(peer) }
            let recorder = Recorder(loop: loop, token: 1, fd: mine)
            let now = monotonicNow()
            let deadlines = [now + 60_000_000, now + 20_000_000, now + 40_000_000]
            loop.execute {
                _ = loop.register(recorder, fd: mine, token: 1, reading: false, writing: true)
                for at in deadlines { loop.schedule(1, at: at) }
            }
            try await eventually { recorder.events.withLock { $0.contains("writable") } }
            _ = write(peer, "x", 1)
            try await eventually { recorder.events.withLock { $0.filter { $0.hasPrefix("timer") }.count == 3 && $0.contains("read x") } }
            let events = recorder.events.withLock { $0 }
            #expect(events.first == "writable")
            #expect(events.contains("read x"))
            // Reading was off until handleWritable turned it on: nothing was read before that.
            #expect(events.firstIndex(of: "read x")! > events.firstIndex(of: "writable")!)
            #expect(events.filter { $0.hasPrefix("timer") } == deadlines.sorted().map { "timer \($0) late true" })
            loop.execute { loop.deregister(1) }
        }

        @Test func hangUpWithoutInterestIsReportedAndStopHangsUpTheRest() async throws {
            let loop = try IOLoop(index: 0)
            try loop.start()
            let (first, firstPeer) = try Self.socketPair()
            let (second, secondPeer) = try Self.socketPair()
            defer { for fd in [first, second, secondPeer] { close(fd) } }
            let a = Recorder(loop: loop, token: 1, fd: first)
            let b = Recorder(loop: loop, token: 2, fd: second)
            loop.execute {
                _ = loop.register(a, fd: first, token: 1, reading: false, writing: false)
                _ = loop.register(b, fd: second, token: 2, reading: false, writing: false)
            }
            // The peer goes away while `a` watches nothing: the loop must still say so, once.
            close(firstPeer)
            try await eventually { a.events.withLock { $0 } == ["hangup"] }
            try await Task.sleep(for: .milliseconds(50))
            #expect(a.events.withLock { $0 } == ["hangup"])
            #expect(b.events.withLock { $0 }.isEmpty)
            loop.stop()
            try await eventually { b.events.withLock { $0 } == ["hangup"] }
            #expect(b.events.withLock { $0 } == ["hangup"])
        }

        /// A stream writer whose connection outlived the loop waits for a block it hands to the
        /// loop; that block must still run (on the fallback queue), or the writer hangs forever.
        @Test func workAfterStopStillRuns() async throws {
            let loop = try IOLoop(index: 0)
            try loop.start()
            let ran = Atomic<Int>(0)
            loop.stop()
            for i in 0..<100 {
                loop.execute { ran.add(1, ordering: .relaxed) }
                if i % 10 == 0 { try await Task.sleep(for: .milliseconds(5)) }
            }
            try await eventually { ran.load(ordering: .relaxed) == 100 }
            #expect(ran.load(ordering: .relaxed) == 100)
            // And nothing registers on a loop that has exited.
            let (mine, peer) = try Self.socketPair()
            defer { close(mine); close(peer) }
            let registered = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Bool, any Error>) in
                loop.execute {
                    continuation.resume(
                        returning: loop.register(Recorder(loop: loop, token: 9, fd: mine), fd: mine, token: 9, reading: true, writing: false))
                }
            }
            #expect(!registered)
        }

        @Test func requestIDsAreDistinctHexOfFixedLength() {
            let ids = (0..<20_000).map { _ in HTTPRequest.generateRequestID() }
            #expect(Set(ids).count == ids.count)
            #expect(ids.allSatisfy { $0.utf8.count == 16 && $0.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) } })
            #expect(HTTPRequest.hex16(0x0123_4567_89ab_cdef) == "0123456789abcdef")
        }
    }
}
