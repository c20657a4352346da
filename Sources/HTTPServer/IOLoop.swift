import Dispatch

/// A serial queue that does socket I/O for a share of the connections, with the read buffer and
/// Date header cache those connections share.
final class IOLoop: @unchecked Sendable {
    // @unchecked Sendable: `scratch` and the date cache are only used from blocks running on
    // `queue`, which is serial, so they are never accessed concurrently.
    let queue: DispatchQueue
    /// Read buffer shared by this loop's connections (reads never overlap on a serial queue).
    let scratch: UnsafeMutableRawBufferPointer
    private var cachedSecond = -1
    private var cachedDate = ""

    static let readBufferSize = 64 * 1024

    init(index: Int) {
        queue = DispatchQueue(label: "HTTPServer.io.\(index)")
        scratch = .allocate(byteCount: Self.readBufferSize, alignment: 16)
    }

    deinit {
        scratch.deallocate()
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
}

@inline(__always)
func monotonicNow() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
