/// What a chat remembers of its messages, in WhatsApp's order: by `occurredAt`, then by
/// arrival. It is what makes unread counts exact: every unread message is kept (however
/// many) with every message after the oldest of them, plus the read ones before it of the
/// last minute (at least `readCapacity`), so that "read up to X" finds X when X is an own
/// or an already-read message and a late message arrived before it.
///
/// Each entry is 16 bytes: a message id's `stableHash` with its low two bits replaced by
/// the entry's `Kind`, and the message's time. No allocation for none or one entry: at a
/// million chats most chats hold one.
struct MessageHistory: Hashable, Sendable {
    /// What an entry stands for. Raw values are the entry's low two bits and are written
    /// to checkpoints: never renumber.
    enum Kind: UInt64 {
        /// An own message (`fromMe`): never unread.
        case own = 0
        /// An incoming message that counts as unread.
        case unread = 1
        /// An incoming message that does not count: read, revoked, or `system`.
        case seen = 2
        /// Unread messages a history snapshot counted without naming them; the entry's
        /// high bits hold how many. They sit just before the snapshot's last message.
        case hidden = 3
    }

    struct Entry: Hashable, Sendable {
        /// A `stableHash` with its low two bits replaced by the kind; or, for `hidden`,
        /// the count shifted left by two.
        var word: UInt64
        /// Epoch ms (`occurredAt` of the message).
        var timestamp: Int64

        init(word: UInt64, timestamp: Int64) {
            self.word = word
            self.timestamp = timestamp
        }

        init(idHash: UInt64, kind: Kind, timestamp: Int64) {
            self.init(word: idHash & ~3 | kind.rawValue, timestamp: timestamp)
        }

        static func hidden(count: Int32, timestamp: Int64) -> Entry {
            Entry(word: UInt64(count) << 2 | Kind.hidden.rawValue, timestamp: timestamp)
        }

        var kind: Kind { Kind(rawValue: word & 3) ?? .own }
        /// Unread messages this entry stands for: 1, 0, or a hidden entry's count.
        var unreadMessages: Int32 {
            switch kind {
            case .unread: return 1
            case .hidden: return Int32(truncatingIfNeeded: word >> 2)
            case .own, .seen: return 0
            }
        }

        /// Whether this entry is the message whose id hashes to `idHash`.
        func names(_ idHash: UInt64) -> Bool { kind != .hidden && word | 3 == idHash | 3 }
    }

    /// Read messages (own and `seen`) always remembered before a chat's oldest unread one.
    static let readCapacity = 8
    /// Read messages this much older than a chat's newest message may be forgotten (beyond
    /// `readCapacity`): a message arriving later than this behind them is the only case a
    /// read cannot place (`schemas/projection.md`).
    static let readWindowMilliseconds: Int64 = 60_000

    private enum Storage: Hashable, Sendable {
        case none
        case one(Entry)
        case many([Entry])
    }

    private var storage = Storage.none

    init() {}

    init(_ entries: [Entry]) {
        storage = Self.normalized(entries)
    }

    var entries: [Entry] {
        switch storage {
        case .none: return []
        case .one(let entry): return [entry]
        case .many(let entries): return entries
        }
    }

    /// The number of unread messages the entries stand for.
    var unreadMessages: Int32 {
        switch storage {
        case .none: return 0
        case .one(let entry): return entry.unreadMessages
        case .many(let entries): return entries.reduce(0) { $0 &+ $1.unreadMessages }
        }
    }

    /// Adds a message in order: after every entry not newer than it (arrival breaks ties).
    /// Returns false, changing nothing, if the same message (same id, same time) is there:
    /// a bridge sending a message again under a new event id.
    mutating func insert(_ entry: Entry) -> Bool {
        if case .none = storage {
            storage = .one(entry)
            return true
        }
        return modify { entries in
            var index = entries.count
            while index > 0, entries[index - 1].timestamp > entry.timestamp { index -= 1 }
            var same = index
            while same > 0, entries[same - 1].timestamp == entry.timestamp {
                same -= 1
                if entries[same].names(entry.word) { return false }
            }
            entries.insert(entry, at: index)
            Self.trim(&entries)
            return true
        }
    }

    /// Whether an own message newer than `timestamp` is remembered.
    func hasOwnMessage(after timestamp: Int64) -> Bool {
        switch storage {
        case .none:
            return false
        case .one(let entry):
            return entry.kind == .own && entry.timestamp > timestamp
        case .many(let entries):
            for entry in entries.reversed() {
                guard entry.timestamp > timestamp else { return false }
                if entry.kind == .own { return true }
            }
            return false
        }
    }

    /// Marks the newest message named by one of `idHashes` (of a kind `matching` accepts)
    /// and every message before it read. Returns nil if none is remembered, else how many
    /// unread messages were read.
    mutating func readThrough(_ idHashes: [UInt64], matching accepts: (Kind) -> Bool) -> Int32? {
        modify { entries -> Int32? in
            guard let last = entries.lastIndex(where: { entry in accepts(entry.kind) && idHashes.contains(where: entry.names) })
            else { return nil }
            let read = Self.markRead(&entries, through: last)
            Self.trim(&entries)
            return read
        }
    }

    /// Marks every message read; returns how many unread messages that read.
    mutating func readAll() -> Int32 {
        modify { entries -> Int32 in
            let read = Self.markRead(&entries, through: entries.count - 1)
            Self.trim(&entries)
            return read
        }
    }

    /// Takes in another history (the same contact under another id): every message once,
    /// in order (by time; this history's messages first at equal times); a message in both
    /// counts only if unread in both.
    mutating func merge(_ other: MessageHistory) {
        let theirs = other.entries
        guard !theirs.isEmpty else { return }
        modify { mine in
            var merged: [Entry] = []
            merged.reserveCapacity(mine.count + theirs.count)
            var (i, j) = (0, 0)
            while i < mine.count || j < theirs.count {
                if j == theirs.count || (i < mine.count && mine[i].timestamp <= theirs[j].timestamp) {
                    merged.append(mine[i])
                    i += 1
                } else {
                    merged.append(theirs[j])
                    j += 1
                }
            }
            // The same message under both ids: keep the first, read if either was read.
            var kept: [Entry] = []
            kept.reserveCapacity(merged.count)
            for entry in merged {
                var index = kept.count - 1
                while index >= 0, kept[index].timestamp == entry.timestamp, !(entry.kind != .hidden && kept[index].names(entry.word)) {
                    index -= 1
                }
                if index >= 0, kept[index].timestamp == entry.timestamp {
                    if entry.kind == .seen, kept[index].kind == .unread { kept[index] = entry }
                    continue
                }
                kept.append(entry)
            }
            Self.trim(&kept)
            mine = kept
        }
    }

    /// Marks the message named by `idHash` as no longer counting (a revoke); returns true
    /// if it was unread.
    mutating func revoke(_ idHash: UInt64) -> Bool {
        modify { entries -> Bool in
            guard let index = entries.lastIndex(where: { $0.names(idHash) }), entries[index].kind == .unread else { return false }
            entries[index].word = entries[index].word & ~3 | Kind.seen.rawValue
            Self.trim(&entries)
            return true
        }
    }

    private static func markRead(_ entries: inout [Entry], through last: Int) -> Int32 {
        guard last >= 0 else { return 0 }
        var read: Int32 = 0
        var kept = 0
        for index in 0...last {
            var entry = entries[index]
            read &+= entry.unreadMessages
            switch entry.kind {
            case .hidden: continue  // the snapshot's unnamed messages: nothing left to remember
            case .unread: entry.word = entry.word & ~3 | Kind.seen.rawValue
            case .own, .seen: break
            }
            entries[kept] = entry
            kept += 1
        }
        if kept <= last { entries.removeSubrange(kept...last) }
        return read
    }

    /// Forgets the oldest read messages: those before the oldest unread one, beyond the
    /// newest `readCapacity` of them, and more than `readWindowMilliseconds` older than the
    /// newest message. A read naming a forgotten message could read nothing (everything
    /// before it is read) unless a message arrives later that is older still, which takes
    /// being over a minute late; read messages after an unread one are kept until it is
    /// read, since a read naming one of them reads it.
    private static func trim(_ entries: inout [Entry]) {
        guard entries.count > readCapacity, let newest = entries.last?.timestamp else { return }
        let firstUnread = entries.firstIndex { $0.kind == .unread || $0.kind == .hidden } ?? entries.count
        var forget = 0
        let horizon = newest &- readWindowMilliseconds
        while forget < firstUnread - readCapacity, entries[forget].timestamp < horizon { forget += 1 }
        if forget > 0 { entries.removeFirst(forget) }
    }

    /// Edits the entries as an array; the storage is compacted again afterwards.
    private mutating func modify<Result>(_ body: (inout [Entry]) -> Result) -> Result {
        var array = entries
        storage = .none  // let a `.many` array be uniquely referenced while edited
        let result = body(&array)
        storage = Self.normalized(array)
        return result
    }

    private static func normalized(_ entries: [Entry]) -> Storage {
        switch entries.count {
        case 0: return .none
        case 1: return .one(entries[0])
        default: return .many(entries)
        }
    }
}
