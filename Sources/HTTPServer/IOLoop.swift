import CEventLoop
import Dispatch
import HeapModule
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// What an `IOLoop` drives: the owner of one registered descriptor. Every method is called on the
/// loop's thread.
protocol IOLoopClient: AnyObject {
    /// The descriptor is readable (or at EOF, or in error) and reading is enabled.
    func handleReadable()
    /// The descriptor is writable and writing is enabled.
    func handleWritable()
    /// Error or hang-up while neither reading nor writing is enabled (the peer is gone), or the loop
    /// is stopping with the client still registered. The client must deregister.
    func handleHangup()
    /// A deadline scheduled with `schedule(_:at:)` passed; `at` says which one.
    func timerFired(at: UInt64)
}

/// One I/O thread running an epoll loop for a share of the connections, with the read buffer and
/// Date header cache those connections share.
///
/// Why a thread of its own rather than Dispatch sources: with sources, every readiness event passes
/// from libdispatch's epoll thread to a worker thread before the handler runs, and every response
/// hops back to a queue; at small-request rates those thread switches were most of the server's
/// time. Here the thread that waits in epoll also reads, parses, writes and runs timers; handlers
/// still run in Tasks elsewhere and hand their responses back with `execute`, which wakes the loop
/// through an eventfd only when it is asleep.
///
/// Threading: `execute` may be called from any thread; everything else (register, update,
/// deregister, schedule, `scratch`, `date()`) only from blocks running on the loop's thread.
final class IOLoop: @unchecked Sendable {
    // @unchecked Sendable: the mutable state below the `inbox` is confined to the loop thread (see
    // the type comment); `inbox` is a Mutex.

    struct Registration {
        let client: any IOLoopClient
        let fd: Int32
        var reading: Bool
        var writing: Bool
    }

    private struct Inbox {
        var work: [@Sendable () -> Void] = []
        /// The loop is (about to be) in epoll_wait: the next `execute` must write the eventfd.
        var sleeping = false
        var stopping = false
        /// The loop thread has finished: work goes to `afterExit` instead.
        var exited = false
    }

    private struct Timer: Comparable {
        var at: UInt64
        var token: Int
        static func < (a: Timer, b: Timer) -> Bool { a.at < b.at }
    }

    let index: Int
    /// Read buffer shared by this loop's connections (reads never overlap on one thread).
    let scratch: UnsafeMutableRawBufferPointer
    private let inbox = Mutex(Inbox())
    private let epollFD: Int32
    private let wakeFD: Int32
    private var clients: [Int: Registration] = [:]
    private var timers = Heap<Timer>()
    /// The work being run now (kept between rounds to reuse its capacity).
    private var running: [@Sendable () -> Void] = []
    /// Set by the loop thread as it finishes (work run after that must not register anything).
    private var exitedOnLoopThread = false
    private var cachedSecond = -1
    private var cachedDate = ""
    private let started = Atomic<Bool>(false)
    /// Runs work that arrives after the loop finished (a handler or stream writer that outlived its
    /// connection): every client is closed by then, so the work only takes its "closed" branch, but
    /// it must run, or a stream writer waiting for it would never resume. Serial, like the loop.
    private let afterExit: DispatchQueue

    static let readBufferSize = 64 * 1024
    /// Readiness reports taken per epoll_wait.
    static let eventBatch = 256
    /// Token of the wake-up eventfd (connection tokens are non-negative).
    private static let wakeToken = UInt64.max

    /// Creates the epoll instance and wake-up eventfd; the thread starts with `start()`.
    init(index: Int) throws {
        self.index = index
        let epollFD = cel_epoll_create()
        guard epollFD >= 0 else { throw SocketError("epoll_create1", errno: errno) }
        let wakeFD = cel_eventfd()
        guard wakeFD >= 0 else {
            let code = errno
            Syscall.close(epollFD)
            throw SocketError("eventfd", errno: code)
        }
        guard cel_epoll_ctl(epollFD, CEL_CTL_ADD, wakeFD, CEL_IN, Self.wakeToken) == 0 else {
            let code = errno
            Syscall.close(wakeFD)
            Syscall.close(epollFD)
            throw SocketError("epoll_ctl", errno: code)
        }
        self.epollFD = epollFD
        self.wakeFD = wakeFD
        scratch = .allocate(byteCount: Self.readBufferSize, alignment: 16)
        afterExit = DispatchQueue(label: "HTTPServer.io.\(index).after-exit")
    }

    deinit {
        // Closed only here: `execute` and `stop` may still write the eventfd after the loop exited
        // (they hold a reference), and a closed number could by then belong to another file.
        Syscall.close(wakeFD)
        Syscall.close(epollFD)
        scratch.deallocate()
    }

    /// Starts the loop's thread (once). The thread keeps the loop alive until `stop()`.
    func start() throws {
        guard !started.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let context = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(
            &thread, nil,
            { context in
                let loop = Unmanaged<IOLoop>.fromOpaque(context!).takeRetainedValue()
                loop.run()
                return nil
            }, context)
        guard result == 0 else {
            Unmanaged<IOLoop>.fromOpaque(context).release()
            throw SocketError("pthread_create", errno: result)
        }
        pthread_detach(thread)
    }

    /// Asks the loop to finish: clients still registered get `handleHangup()`, then the thread exits
    /// (the descriptors are closed when the loop is freed). Safe to call more than once, and before
    /// `start()` (the loop then never starts).
    func stop() {
        if !started.exchange(true, ordering: .acquiringAndReleasing) { return }
        let wake = inbox.withLock { s -> Bool in
            s.stopping = true
            defer { s.sleeping = false }
            return s.sleeping
        }
        if wake { signalWake() }
    }

    /// Runs `work` on the loop's thread, after the events being handled now. Callable from any thread.
    func execute(_ work: @escaping @Sendable () -> Void) {
        enum Route { case queued, wake, afterExit }
        let route = inbox.withLock { s -> Route in
            if s.exited { return .afterExit }
            s.work.append(work)
            defer { s.sleeping = false }
            return s.sleeping ? .wake : .queued
        }
        switch route {
        case .queued: break
        case .wake: signalWake()
        case .afterExit: afterExit.async(execute: work)
        }
    }

    // MARK: - Loop-thread API

    /// Watches `fd` for `client` under `token` (unique among this loop's live clients). Errors and
    /// hang-ups are always reported, whatever the interest.
    func register(_ client: any IOLoopClient, fd: Int32, token: Int, reading: Bool, writing: Bool) -> Bool {
        guard !exitedOnLoopThread, cel_epoll_ctl(epollFD, CEL_CTL_ADD, fd, Self.interest(reading, writing), UInt64(token)) == 0 else { return false }
        clients[token] = Registration(client: client, fd: fd, reading: reading, writing: writing)
        return true
    }

    /// Changes what the client is woken for; a no-op (no syscall) when nothing changes.
    func update(_ token: Int, reading: Bool, writing: Bool) {
        guard var registration = clients[token], registration.reading != reading || registration.writing != writing else { return }
        registration.reading = reading
        registration.writing = writing
        clients[token] = registration
        _ = cel_epoll_ctl(epollFD, CEL_CTL_MOD, registration.fd, Self.interest(reading, writing), UInt64(token))
    }

    /// Stops watching the client's descriptor. Call before closing it: reports already taken from
    /// the kernel for this token are dropped, so a reused descriptor number cannot be mistaken for it.
    func deregister(_ token: Int) {
        guard let registration = clients.removeValue(forKey: token) else { return }
        _ = cel_epoll_ctl(epollFD, CEL_CTL_DEL, registration.fd, 0, UInt64(token))
    }

    /// Calls the client's `timerFired(at:)` once the monotonic clock passes `at` (uptime ns). Earlier
    /// schedules are not cancelled; the client tells its current deadline from stale ones by `at`.
    func schedule(_ token: Int, at: UInt64) {
        timers.insert(Timer(at: at, token: token))
        // Entries of closed connections stay until they expire (up to the longest timeout); with
        // heavy connection churn, drop them once they clearly outnumber the live ones.
        if timers.count > 1024 && timers.count > 4 * clients.count {
            let live = clients
            timers = Heap(timers.unordered.filter { live[$0.token] != nil })
        }
    }

    /// The current IMF-fixdate, formatted at most once per second per loop.
    func date() -> String {
        let second = HTTPDate.nowEpochSeconds()
        if second != cachedSecond {
            cachedSecond = second
            cachedDate = HTTPDate.format(second)
        }
        return cachedDate
    }

    // MARK: - The loop

    private static func interest(_ reading: Bool, _ writing: Bool) -> UInt32 {
        (reading ? CEL_IN : 0) | (writing ? CEL_OUT : 0)
    }

    private func signalWake() {
        var one: UInt64 = 1
        while write(wakeFD, &one, 8) < 0 && errno == EINTR {}
        // EAGAIN would mean the counter is near 2^64: the loop is awake anyway.
    }

    private func drainWake() {
        var value: UInt64 = 0
        while read(wakeFD, &value, 8) < 0 && errno == EINTR {}
    }

    /// Swaps the queued work out under the lock and runs it; returns whether `stop()` was called.
    private func runQueuedWork() -> Bool {
        let stopping = inbox.withLock { s -> Bool in
            swap(&s.work, &running)
            return s.stopping
        }
        for work in running { work() }
        running.removeAll(keepingCapacity: true)
        return stopping
    }

    private func fireTimers() {
        let now = monotonicNow()
        while let first = timers.min, first.at <= now {
            timers.removeMin()
            clients[first.token]?.client.timerFired(at: first.at)
        }
    }

    /// Milliseconds until the earliest timer (rounded up), or -1 to wait for events only.
    private func waitTimeout() -> Int32 {
        guard let first = timers.min else { return -1 }
        let now = monotonicNow()
        guard first.at > now else { return 0 }
        return Int32(clamping: (first.at - now + 999_999) / 1_000_000)
    }

    private func run() {
        cel_set_thread_name("http-io-\(index)")
        let events = UnsafeMutablePointer<cel_event>.allocate(capacity: Self.eventBatch)
        defer { events.deallocate() }
        while true {
            if runQueuedWork() { break }
            fireTimers()
            let timeout = waitTimeout()
            let mayBlock =
                timeout != 0
                && inbox.withLock { s -> Bool in
                    guard s.work.isEmpty, !s.stopping else { return false }
                    s.sleeping = true
                    return true
                }
            let count = cel_epoll_wait(epollFD, events, Int32(Self.eventBatch), mayBlock ? timeout : 0)
            if mayBlock { inbox.withLock { $0.sleeping = false } }
            guard count > 0 else { continue }  // timeout, or EINTR: go round again
            for i in 0..<Int(count) {
                let event = events[i]
                if event.token == Self.wakeToken {
                    drainWake()
                    continue
                }
                dispatch(event.events, token: Int(truncatingIfNeeded: event.token))
            }
        }
        // Stopping: whoever is still here is told to close; work queued until now runs here, later
        // work on `afterExit`.
        for registration in Array(clients.values) { registration.client.handleHangup() }
        clients.removeAll()
        exitedOnLoopThread = true
        while true {
            let last = inbox.withLock { s -> [@Sendable () -> Void] in
                if s.work.isEmpty { s.exited = true }
                defer { s.work = [] }
                return s.work
            }
            if last.isEmpty { break }
            for work in last { work() }
        }
        timers = Heap()
    }

    private func dispatch(_ bits: UInt32, token: Int) {
        // Each call may deregister the client, so the registration is looked up again before the next.
        guard let registration = clients[token] else { return }
        let failed = bits & (CEL_ERR | CEL_HUP) != 0
        if registration.reading && (bits & CEL_IN != 0 || failed) {
            registration.client.handleReadable()
        }
        if let current = clients[token], current.writing, bits & CEL_OUT != 0 || failed {
            current.client.handleWritable()
        }
        if failed, let current = clients[token], !current.reading, !current.writing {
            // Level-triggered error/hang-up with no interest would be reported forever.
            current.client.handleHangup()
        }
    }
}

@inline(__always)
func monotonicNow() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
