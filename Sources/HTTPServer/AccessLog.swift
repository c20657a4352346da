import Logging

/// One info-level line per response. Only the request line's method and raw path are logged:
/// never the query or header values, which is where tokens and keys travel.
struct AccessLog: Sendable {
    let logger: Logger

    func record(requestID: String, method: String, path: Substring, status: Int, bytes: Int, durationNanoseconds: UInt64, remote: String) {
        guard logger.logLevel <= .info else { return }
        let milliseconds = Double(durationNanoseconds) / 1_000_000
        let rounded = (milliseconds * 10).rounded() / 10
        logger.info(
            "request",
            metadata: [
                "request_id": .string(requestID),
                "method": .string(method),
                "path": .string(String(path)),
                "status": .stringConvertible(status),
                "bytes": .stringConvertible(bytes),
                "duration_ms": .stringConvertible(rounded),
                "remote": .string(remote),
            ]
        )
    }
}
