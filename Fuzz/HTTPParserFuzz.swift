// libFuzzer entry point for the request parser. Built standalone with HTTPParser.swift and
// HTTPTypes.swift (no swift-log, no Foundation) by scripts/fuzz-http-parser.sh.
//
// Beyond "never crash, never hang, never trip ASan", it checks one property: feeding the input
// in two pieces (split point taken from the input) gives the same requests and the same error
// status as feeding it whole, since incremental parsing is where parsers usually go wrong.

private struct Outcome: Equatable {
    var requests: [String] = []
    var errorStatus: Int?
}

private func parse(_ bytes: [UInt8], splitAt split: Int?) -> Outcome {
    let limits = HTTPParserLimits(maxHeaderBytes: 2048, maxHeaderCount: 32, maxBodyBytes: 16384)
    var parser = HTTPRequestParser(limits: limits)
    var outcome = Outcome()
    let pieces: [ArraySlice<UInt8>] = split.map { [bytes[..<$0], bytes[$0...]] } ?? [bytes[...]]
    for piece in pieces {
        parser.feed(Array(piece))
        do {
            while let event = try parser.next() {
                if case .request(let request) = event {
                    // Touch the derived fields too: decoding must not trap on any input.
                    let summary = "\(request.method) \(request.target) \(request.path) \(request.query.count) \(request.queryItems.count) "
                        + "\(request.version) \(request.headers.count) \(request.body.count) \(request.wantsKeepAlive) \(request.requestID.count)"
                    outcome.requests.append(summary)
                }
            }
        } catch {
            outcome.errorStatus = error.status
            return outcome
        }
    }
    return outcome
}

@_cdecl("LLVMFuzzerTestOneInput")
public func httpParserFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let whole = parse(bytes, splitAt: nil)
    if size > 1 {
        let split = 1 + Int(bytes[0]) % (size - 1)
        // Request IDs are random, but only their length (client-given or 16) enters the summary.
        let pieces = parse(bytes, splitAt: split)
        precondition(pieces == whole, "split parse differs: \(whole) vs \(pieces)")
    }
    return 0
}
