/// Bytes waiting for the socket, as a queue of chunks. Small chunks are coalesced so that a typical
/// response (head plus a small body) leaves in one send(2).
struct OutputBuffer {
    enum Outcome: Equatable {
        case drained
        case wouldBlock
        case failed(Int32)
    }

    static let coalesceLimit = 16 * 1024

    private var chunks: [[UInt8]] = []
    private var first = 0  // index of the first chunk not fully sent
    private var offset = 0  // bytes of chunks[first] already sent
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    mutating func append(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        count += bytes.count
        if chunks.count > first, chunks[chunks.count - 1].count + bytes.count <= Self.coalesceLimit {
            chunks[chunks.count - 1].append(contentsOf: bytes)
        } else {
            chunks.append(bytes)
        }
    }

    /// Sends until drained or the socket would block; returns the bytes sent and why it stopped.
    mutating func send(to fd: Int32) -> (sent: Int, outcome: Outcome) {
        var sent = 0
        while first < chunks.count {
            let start = offset
            let result = chunks[first].withUnsafeBytes { raw in
                Syscall.send(fd, UnsafeRawBufferPointer(rebasing: raw[start...]))
            }
            switch result {
            case .done(let n):
                sent += n
                count -= n
                offset += n
                if offset == chunks[first].count {
                    first += 1
                    offset = 0
                }
            case .wouldBlock, .eof:
                compact()
                return (sent, .wouldBlock)
            case .failed(let code):
                return (sent, .failed(code))
            }
        }
        compact()
        return (sent, .drained)
    }

    private mutating func compact() {
        if first == chunks.count {
            chunks.removeAll(keepingCapacity: chunks.capacity <= 64)
            first = 0
        } else if first >= 32 {
            chunks.removeFirst(first)
            first = 0
        }
    }
}
