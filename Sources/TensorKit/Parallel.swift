import Dispatch
import Foundation
import NativeBridge

/// Splits index ranges over the cores. The chunk count is capped by the core count so that each
/// worker gets one contiguous range (good for caches and for per-chunk scratch memory).
public enum Parallel {
    /// Cores the calling thread may use (see `Parallelism.cores`).
    @inlinable public static var cores: Int { Parallelism.cores }

    /// Calls `body` with disjoint ranges covering `0..<count`, concurrently when the work is large
    /// enough: below `grain` items per chunk the split is not worth a thread hop.
    ///
    /// Contract: `body` may run on several threads at once and must only write state owned by its
    /// range (the kernels write disjoint output elements). That is what makes passing a
    /// non-`Sendable` closure across threads sound here; every caller upholds it.
    @inlinable
    public static func forEach(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = min(cores, max(1, count / max(1, grain)))
        if chunks == 1 {
            body(0..<count)
            return
        }
        withoutActuallyEscaping(body) { escapable in
            let task = UncheckedSendable(escapable)
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                let lo = count * c / chunks
                let hi = count * (c + 1) / chunks
                if lo < hi { task.value(lo..<hi) }
            }
        }
    }
}

extension Parallel {
    /// Like `forEach`, but also passes the chunk's index (0..<chunks), so a chunk can write
    /// per-chunk partial results (e.g. counts) that the caller merges afterwards. Returns the
    /// number of chunks used.
    @inlinable @discardableResult
    public static func forEachChunk(_ count: Int, grain: Int = 1, _ body: (Int, Range<Int>) -> Void) -> Int {
        guard count > 0 else { return 0 }
        let chunks = min(cores, max(1, count / max(1, grain)))
        if chunks == 1 {
            body(0, 0..<count)
            return 1
        }
        withoutActuallyEscaping(body) { escapable in
            let task = UncheckedSendable(escapable)
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                let lo = count * c / chunks
                let hi = count * (c + 1) / chunks
                if lo < hi { task.value(c, lo..<hi) }
            }
        }
        return chunks
    }
}

/// A mutable pointer that may cross into `Parallel.forEach` chunks. Safe only when chunks write
/// disjoint elements, which every caller states at the call site.
public struct SharedPointer<T>: @unchecked Sendable {
    public let base: UnsafeMutablePointer<T>
    @inlinable public init(_ base: UnsafeMutablePointer<T>) { self.base = base }
}

/// Carries a value the compiler cannot prove `Sendable` into `concurrentPerform`; see the contract
/// of `Parallel.forEach`.
public struct UncheckedSendable<T>: @unchecked Sendable {
    public let value: T
    @inlinable public init(_ value: T) { self.value = value }
}
