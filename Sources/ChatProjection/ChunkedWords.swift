import CLedgerIntrinsics

/// A growable array of `UInt64` kept in fixed-size chunks (16,384 words, 128 KiB) held by
/// an outer array, so that its copy-on-write copies only what changes: a copy shares every
/// chunk, and a later write copies the one chunk it touches (Swift copies a nested array
/// on its first mutation through the outer one, chunk by chunk).
///
/// Why: the event-id windows are tens of MB; the projection is copied (a COW snapshot) for
/// every checkpoint, and the first insert after one copied a whole window's ring and hash
/// table under the projection lock, stalling the fold and queries for tens of ms. Chunked,
/// that first insert copies at most a few chunks (about 10–20 µs each).
struct ChunkedWords: Sendable {
    static let chunkShift = 14
    static let chunkSize = 1 << chunkShift
    static let chunkMask = chunkSize - 1

    /// Full chunks, then the last, holding the rest (never empty).
    private var chunks: [[UInt64]] = []
    private(set) var count = 0

    init() {}

    /// `count` words of `value`.
    init(repeating value: UInt64, count: Int) {
        self.count = count
        var left = count
        chunks.reserveCapacity((count + Self.chunkMask) >> Self.chunkShift)
        while left > 0 {
            chunks.append(Array(repeating: value, count: min(left, Self.chunkSize)))
            left -= Self.chunkSize
        }
    }

    var isEmpty: Bool { count == 0 }

    subscript(index: Int) -> UInt64 {
        @inline(__always) get { chunks[index &>> Self.chunkShift][index & Self.chunkMask] }
        @inline(__always) set { chunks[index &>> Self.chunkShift][index & Self.chunkMask] = newValue }
    }

    mutating func append(_ value: UInt64) {
        if count & Self.chunkMask == 0 {
            chunks.append([value])
        } else {
            chunks[chunks.count - 1].append(value)
        }
        count += 1
    }

    /// Asks the CPU to fetch the word at `index` ahead of its use.
    @inline(__always)
    func prefetch(_ index: Int) {
        chunks[index &>> Self.chunkShift].withUnsafeBufferPointer { cl_prefetch($0.baseAddress! + (index & Self.chunkMask)) }
    }

    /// The words from `start` to the end, then from 0 to `start` (a ring read oldest first).
    func rotated(from start: Int) -> [UInt64] {
        var words: [UInt64] = []
        words.reserveCapacity(count)
        append(from: start, to: count, into: &words)
        append(from: 0, to: start, into: &words)
        return words
    }

    /// Every word, in order.
    var array: [UInt64] { rotated(from: 0) }

    /// Calls `body` with each word that is not 0, in order (a table's entries).
    func forEachNonZero(_ body: (UInt64) -> Void) {
        for chunk in chunks {
            for word in chunk where word != 0 { body(word) }
        }
    }

    private func append(from start: Int, to end: Int, into words: inout [UInt64]) {
        var index = start
        while index < end {
            let chunk = index &>> Self.chunkShift
            let chunkStart = chunk << Self.chunkShift
            let upper = min(end - chunkStart, chunks[chunk].count)
            words.append(contentsOf: chunks[chunk][(index - chunkStart)..<upper])
            index = chunkStart + upper
        }
    }
}
