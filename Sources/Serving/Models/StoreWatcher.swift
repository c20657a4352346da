import CEventLoop
import Foundation
import Logging
import Synchronization

/// Notices what other processes write into the models directory — a version published by the
/// worker, a default changed through another replica — and hands each model whose recorded
/// default changed to `adopt` (load, warm, validate, flip; see `ServingApplication`).
///
/// inotify on the directory and on each model's directory wakes it within milliseconds where it
/// works; a scan every `pollInterval` covers file systems that report no remote changes (NFS and
/// other shared volumes) and platforms without inotify.
public final class StoreWatcher: Sendable {
    public struct Configuration: Sendable {
        /// Seconds between scans when no file event arrives. Default 1.
        public var pollInterval: Double = 1
        /// Also wait on inotify events (Linux), for prompt notice on local file systems. Default true.
        public var useInotify = true
        public init() {}
    }

    let store: ModelStore
    let configuration: Configuration
    let logger: Logger
    let adopt: @Sendable (String, Int) async -> Void
    let stopped = Mutex(false)

    public init(
        store: ModelStore, configuration: Configuration, logger: Logger, adopt: @escaping @Sendable (String, Int) async -> Void
    ) {
        self.store = store
        self.configuration = configuration
        self.logger = logger
        self.adopt = adopt
    }

    /// Starts watching on a thread of its own (loading a version is file I/O and CPU work).
    public func start() {
        let thread = Thread { [self] in loop() }
        thread.name = "spikeserve-store-watcher"
        thread.start()
    }

    public func stop() { stopped.withLock { $0 = true } }

    func loop() {
        var fd: Int32 = -1
        var watched: Set<String> = []
        if configuration.useInotify {
            fd = cel_inotify_open()
            if fd < 0 { logger.info("inotify unavailable; the model store is polled", metadata: ["errno": "\(errno)"]) }
        }
        defer { if fd >= 0 { close(fd) } }
        let timeout = Int32(max(10, configuration.pollInterval * 1000))
        while !stopped.withLock({ $0 }) {
            if fd >= 0 { watchDirectories(fd, &watched) }
            if fd >= 0 {
                if cel_wait_readable(fd, timeout) == 1 {
                    // A version arrives as a burst of events (a directory renamed into place, then
                    // the pointer): let it settle, then scan once.
                    usleep(50_000)
                    cel_drain(fd)
                }
            } else {
                usleep(useconds_t(timeout) * 1000)
            }
            if stopped.withLock({ $0 }) { break }
            for (name, version) in store.synchronize() {
                let done = DispatchSemaphore(value: 0)
                // The adoption awaits the inference scheduler; this thread waits for it so that a
                // version is adopted before the next scan looks again.
                Task {
                    await adopt(name, version)
                    done.signal()
                }
                done.wait()
            }
        }
    }

    /// Watches the root and every model directory (new models appear while running).
    func watchDirectories(_ fd: Int32, _ watched: inout Set<String>) {
        var directories = [store.root]
        let names = (try? FileManager.default.contentsOfDirectory(atPath: store.root)) ?? []
        directories += names.filter { !$0.hasPrefix(".") }.map { store.root + "/" + $0 }
        for directory in directories where !watched.contains(directory) {
            if cel_inotify_watch_directory(fd, directory) >= 0 { watched.insert(directory) }
        }
    }
}
