// Minimal server for scripts/bench-http.sh: GET /json -> {"ok":true} on 127.0.0.1:18080
// (override with HTTP_BENCH_PORT; HTTP_BENCH_IO_THREADS sets the I/O thread count). No access log, so the
// numbers measure the server, not logging.
import Foundation
import HTTPServer
import Logging

var logger = Logger(label: "http-bench")
logger.logLevel = .warning

var router = Router()
let payload = Array(#"{"ok":true}"#.utf8)
router.get("/json") { _ in
    HTTPResponse(status: 200, headers: ["Content-Type": "application/json"], body: payload)
}

let port = ProcessInfo.processInfo.environment["HTTP_BENCH_PORT"].flatMap(Int.init) ?? 18080
let ioThreads = ProcessInfo.processInfo.environment["HTTP_BENCH_IO_THREADS"].flatMap(Int.init) ?? Server.Configuration.processorCount
let server = Server(configuration: .init(host: "127.0.0.1", port: port, ioThreads: ioThreads), logger: logger, handler: router.handler())
try server.start()
server.installSignalHandlers()
print("http-bench listening on 127.0.0.1:\(server.boundPort)")
await server.waitUntilStopped()
