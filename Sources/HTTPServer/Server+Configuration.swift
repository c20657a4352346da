#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

extension Server {
    /// How the server binds, what it accepts, and how long it waits. Every default is documented on
    /// its field; `Configuration()` is a sensible local server.
    public struct Configuration: Sendable {
        /// Address to bind: an IPv4 or IPv6 literal (brackets allowed), "localhost" (IPv4 preferred),
        /// "0.0.0.0" for all IPv4 interfaces or "::" for all interfaces (dual-stack).
        /// Default "127.0.0.1": reachable from this machine only.
        public var host: String
        /// TCP port; 0 asks the kernel for a free one (read it back from `Server.boundPort`).
        /// Default 8080.
        public var port: Int
        /// Length of the kernel's queue of not-yet-accepted connections (listen(2) backlog; the kernel
        /// caps it at net.core.somaxconn). Default 512.
        public var backlog: Int32
        /// Size limits; see `Limits`.
        public var limits: Limits
        /// Deadlines; see `Timeouts`.
        public var timeouts: Timeouts
        /// Number of I/O threads, each an epoll loop that reads, parses and writes for its share of
        /// the connections (spread round-robin). Handlers never run on them. Default: the number of
        /// online processors.
        public var ioThreads: Int

        public init(
            host: String = "127.0.0.1",
            port: Int = 8080,
            backlog: Int32 = 512,
            limits: Limits = Limits(),
            timeouts: Timeouts = Timeouts(),
            ioThreads: Int = Configuration.processorCount
        ) {
            self.host = host
            self.port = port
            self.backlog = backlog
            self.limits = limits
            self.timeouts = timeouts
            self.ioThreads = max(1, ioThreads)
        }

        /// Online processors (at least 1).
        public static var processorCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

        /// Size limits. Exceeding one is answered with the status named on the field, then the
        /// connection is closed.
        public struct Limits: Sendable {
            /// Request line plus header fields, in bytes (also bounds a chunked body's trailers);
            /// over it: 431. Default 16 KiB (16384).
            public var maxHeaderBytes: Int
            /// Header fields per request; over it: 431. Default 100.
            public var maxHeaderCount: Int
            /// Request body after de-chunking, in bytes; over it: 413 (refused before reading when the
            /// Content-Length says so, so `Expect: 100-continue` clients never send it).
            /// Default 32 MiB (33554432).
            public var maxBodyBytes: Int
            /// Open client connections; the next one gets 503 and is closed. Default 4096.
            public var maxConnections: Int
            /// Requests a connection may have parsed but not yet answered (HTTP pipelining); at the
            /// limit the server stops reading from that connection until responses go out. Default 16.
            public var maxPipelinedRequests: Int

            public init(
                maxHeaderBytes: Int = 16 * 1024,
                maxHeaderCount: Int = 100,
                maxBodyBytes: Int = 32 * 1024 * 1024,
                maxConnections: Int = 4096,
                maxPipelinedRequests: Int = 16
            ) {
                self.maxHeaderBytes = maxHeaderBytes
                self.maxHeaderCount = maxHeaderCount
                self.maxBodyBytes = maxBodyBytes
                self.maxConnections = maxConnections
                self.maxPipelinedRequests = max(1, maxPipelinedRequests)
            }
        }

        /// Deadlines. Time spent in a handler is never limited here: handlers own their time.
        public struct Timeouts: Sendable {
            /// Total time from the first byte of a request to the end of its header section (not reset
            /// per byte, which is what defeats slowloris); over it: 408 and close. Also how long a new
            /// connection may stay silent before it is closed. Default 10 s.
            public var headerRead: Duration
            /// Longest pause in the arrival of a request body; over it: 408 and close. Default 30 s.
            public var bodyIdle: Duration
            /// How long an idle keep-alive connection is kept before being closed silently. Default 60 s.
            public var keepAliveIdle: Duration
            /// On shutdown, how long in-flight requests may take before connections are cut. Default 10 s.
            public var shutdownGrace: Duration
            /// Longest pause in a client's reading of a response (output pending, no progress); over it
            /// the connection is cut and stream writers throw. Default 30 s.
            public var writeIdle: Duration
            /// After the final response on a connection closed by the server, how long unread client data
            /// is drained so that the kernel sends FIN, not RST, and the client sees the response.
            /// Default 2 s.
            public var lingeringClose: Duration

            public init(
                headerRead: Duration = .seconds(10),
                bodyIdle: Duration = .seconds(30),
                keepAliveIdle: Duration = .seconds(60),
                shutdownGrace: Duration = .seconds(10),
                writeIdle: Duration = .seconds(30),
                lingeringClose: Duration = .seconds(2)
            ) {
                self.headerRead = headerRead
                self.bodyIdle = bodyIdle
                self.keepAliveIdle = keepAliveIdle
                self.shutdownGrace = shutdownGrace
                self.writeIdle = writeIdle
                self.lingeringClose = lingeringClose
            }
        }
    }
}

extension Duration {
    /// Whole nanoseconds, saturating; what Dispatch deadlines are computed in.
    var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        guard seconds >= 0 else { return 0 }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : whole &+ UInt64(attoseconds / 1_000_000_000)
    }
}
