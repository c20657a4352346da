// Thin POSIX socket layer. Discipline borrowed from swift-nio: every call retries EINTR, EAGAIN is
// "would block" (never an error), SIGPIPE is avoided per call with MSG_NOSIGNAL (and process-wide in
// Server.start), and close() is never retried (on Linux the fd is gone even on EINTR).
#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

struct SocketError: Error, CustomStringConvertible {
    var description: String

    init(_ call: String, errno code: Int32) {
        description = "\(call) failed: \(String(cString: strerror(code))) (errno \(code))"
    }

    init(_ message: String) {
        description = message
    }
}

/// Outcome of a non-blocking read or write.
enum IOResult: Equatable {
    case done(Int)
    case wouldBlock
    case eof
    case failed(Int32)
}

enum AcceptResult {
    case accepted(fd: Int32, remote: String)
    case wouldBlock
    case failed(Int32)
}

#if canImport(Darwin)
    private let sendFlags: Int32 = 0  // Darwin has no MSG_NOSIGNAL; SO_NOSIGPIPE is set per socket instead.
#else
    private let sendFlags = Int32(MSG_NOSIGNAL)
#endif

enum Syscall {
    static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> IOResult {
        while true {
            let n = sysRead(fd, buffer.baseAddress, buffer.count)
            if n > 0 { return .done(n) }
            if n == 0 { return .eof }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            case let code: return .failed(code)
            }
        }
    }

    static func send(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> IOResult {
        while true {
            let n = sysSend(fd, bytes.baseAddress, bytes.count, sendFlags)
            if n >= 0 { return .done(n) }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            case let code: return .failed(code)
            }
        }
    }

    static func accept(_ fd: Int32) -> AcceptResult {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        while true {
            let client = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in sysAccept(fd, address, &length) }
            }
            if client >= 0 {
                // accept4(2) is not exported by the Glibc module, so flags are set afterwards; the
                // accepted socket does not inherit O_NONBLOCK on Linux.
                _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                #if canImport(Darwin)
                    var noSigPipe: Int32 = 1
                    setsockopt(client, SOL_SOCKET, SO_NOSIGPIPE, &noSigPipe, socklen_t(MemoryLayout<Int32>.size))
                #endif
                var one: Int32 = 1
                setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                return .accepted(fd: client, remote: formatAddress(storage))
            }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            case let code: return .failed(code)
            }
        }
    }

    static func close(_ fd: Int32) {
        _ = sysClose(fd)
    }

    /// Sends FIN after the last response while still reading (lingering close).
    static func shutdownWrite(_ fd: Int32) {
        _ = sysShutdown(fd, Int32(SHUT_WR))
    }
}

// Free functions so the libc names are not shadowed by `Syscall`'s members.
private func sysRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int { read(fd, buffer, count) }
private func sysSend(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int, _ flags: Int32) -> Int { send(fd, buffer, count, flags) }
private func sysAccept(_ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>, _ length: UnsafeMutablePointer<socklen_t>) -> Int32 {
    accept(fd, address, length)
}
private func sysClose(_ fd: Int32) -> Int32 { close(fd) }
private func sysShutdown(_ fd: Int32, _ how: Int32) -> Int32 { shutdown(fd, how) }

/// Creates a non-blocking listening socket. `host` may be an IPv4/IPv6 literal (brackets allowed),
/// a name such as "localhost" (IPv4 preferred), or a wildcard ("0.0.0.0", "::" which is dual-stack).
func makeListeningSocket(host: String, port: Int, backlog: Int32) throws -> (fd: Int32, port: Int) {
    var name = host
    if name.hasPrefix("[") && name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
    var hints = addrinfo()
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
    hints.ai_family = AF_UNSPEC
    #if os(Linux)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    #else
        hints.ai_socktype = SOCK_STREAM
    #endif
    var list: UnsafeMutablePointer<addrinfo>?
    let rc = getaddrinfo(name.isEmpty ? nil : name, String(port), &hints, &list)
    guard rc == 0, let list else {
        throw SocketError("cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
    }
    defer { freeaddrinfo(list) }
    var candidates: [UnsafeMutablePointer<addrinfo>] = []
    var cursor: UnsafeMutablePointer<addrinfo>? = list
    while let entry = cursor {
        candidates.append(entry)
        cursor = entry.pointee.ai_next
    }
    candidates.sort { a, b in a.pointee.ai_family == AF_INET && b.pointee.ai_family != AF_INET }
    var lastError = SocketError("no usable address for \(host)")
    for entry in candidates {
        do {
            return try bindAndListen(entry.pointee, backlog: backlog)
        } catch {
            lastError = error
        }
    }
    throw lastError
}

private func bindAndListen(_ info: addrinfo, backlog: Int32) throws(SocketError) -> (fd: Int32, port: Int) {
    #if os(Linux)
        let type = Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue)
    #else
        let type = SOCK_STREAM
    #endif
    let fd = socket(info.ai_family, type, 0)
    guard fd >= 0 else { throw SocketError("socket", errno: errno) }
    var one: Int32 = 1
    var zero: Int32 = 0
    let intSize = socklen_t(MemoryLayout<Int32>.size)
    // SO_REUSEADDR: restart immediately while old connections sit in TIME_WAIT.
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, intSize)
    if info.ai_family == AF_INET6 {
        // "::" then also accepts IPv4 (mapped addresses), whatever the system default is.
        setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &zero, intSize)
    }
    #if !os(Linux)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    #endif
    if bind(fd, info.ai_addr, info.ai_addrlen) != 0 {
        let code = errno
        Syscall.close(fd)
        throw SocketError("bind", errno: code)
    }
    if listen(fd, backlog) != 0 {
        let code = errno
        Syscall.close(fd)
        throw SocketError("listen", errno: code)
    }
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    _ = withUnsafeMutablePointer(to: &storage) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return (fd, addressPort(storage))
}

private func addressPort(_ storage: sockaddr_storage) -> Int {
    let family = Int32(storage.ss_family)
    return withUnsafePointer(to: storage) { pointer in
        if family == AF_INET6 {
            return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
        }
        return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
    }
}

/// "1.2.3.4:port" or "[::1]:port".
func formatAddress(_ storage: sockaddr_storage) -> String {
    var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
    let family = Int32(storage.ss_family)
    return withUnsafePointer(to: storage) { pointer -> String in
        switch family {
        case AF_INET:
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                var address = sin.pointee.sin_addr
                inet_ntop(AF_INET, &address, &text, socklen_t(text.count))
                return "\(cString(text)):\(UInt16(bigEndian: sin.pointee.sin_port))"
            }
        case AF_INET6:
            return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                var address = sin6.pointee.sin6_addr
                inet_ntop(AF_INET6, &address, &text, socklen_t(text.count))
                let host = cString(text)
                let port = UInt16(bigEndian: sin6.pointee.sin6_port)
                // IPv4 clients of a dual-stack "::" listener arrive as ::ffff:a.b.c.d; log them as IPv4.
                if host.hasPrefix("::ffff:"), host.contains(".") { return "\(host.dropFirst(7)):\(port)" }
                return "[\(host)]:\(port)"
            }
        default:
            return "unknown"
        }
    }
}

private func cString(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
