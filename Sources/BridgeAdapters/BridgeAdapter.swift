import ChatEvents

/// One Kafka record of a bridge's topic, copied out of the consumer.
package struct BridgeRecord: Sendable, Hashable {
    package var topic: String
    package var partition: Int32
    package var offset: Int64
    /// Kafka's timestamp, ms since the epoch; -1 when the record has none.
    package var timestamp: Int64
    package var key: [UInt8]?
    /// Nil for a tombstone.
    package var value: [UInt8]?

    package init(topic: String, partition: Int32, offset: Int64, timestamp: Int64 = -1, key: [UInt8]? = nil, value: [UInt8]?) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value
    }
}

/// A canonical event made from a bridge record, with what the stage needs to place it.
package struct AdaptedEvent: Sendable, Hashable {
    package var event: Event
    /// The message this event acts on (a receipt, a revoke, an edit): the stage emits it
    /// only after the message's `message.created` (or after a bounded wait), because
    /// bridges publish them on other topics and the projection ignores them before.
    package var waitsFor: String?
    /// The event's `chatId` is the record's best guess (a LID, or the account's own id
    /// where a bridge writes the sender's view): the chat the message was created in,
    /// when the stage has seen it, replaces it.
    package var chatIsGuess: Bool
    /// Without the message's chat the event is dropped (its `chatId` is no chat at all).
    package var dropIfUnresolved: Bool
    /// The guess may be the account's own LID, which the record cannot tell from a
    /// contact's (a key in the sender's view): a guess that differs from the message's chat
    /// is then no alias of that chat.
    package var guessMayBeOwn: Bool

    package init(
        event: Event, waitsFor: String? = nil, chatIsGuess: Bool = false, dropIfUnresolved: Bool = false, guessMayBeOwn: Bool = false
    ) {
        self.event = event
        self.waitsFor = waitsFor
        self.chatIsGuess = chatIsGuess
        self.dropIfUnresolved = dropIfUnresolved
        self.guessMayBeOwn = guessMayBeOwn
    }
}

/// What one bridge record became.
package struct AdaptedRecord: Sendable {
    /// The record's fate.
    package enum Outcome: Sendable, Equatable {
        /// Events in `events` (maybe none, with `skipReasons` saying why).
        case mapped
        /// Not usable: a dead letter with a stable code (`invalid_json`, `missing_field`, ...)
        /// and a description naming the field. Neither contains the record's secret.
        case deadLetter(code: String, detail: String)
    }

    package var outcome: Outcome = .mapped
    package var events: [AdaptedEvent] = []
    /// Why parts of the record made no event (`unknown_event`, `ignored_event`, ...), counted.
    package var skipReasons: [String] = []
    /// The bridge's name for what the record is (Evolution's `event`), when the adapter knows it.
    package var eventName: String?
    /// The record's secret (Evolution's `apikey`), to scrub from anything written about it.
    package var secret: [UInt8]?
    /// The bridge's own time of the record (ms; Evolution's envelope `timestamp`), by which
    /// the stage orders records across topics; nil: Kafka's timestamp is used.
    package var time: Int64?

    package init() {}

    /// Marks the record as a dead letter; events made so far are dropped.
    package mutating func deadLetter(_ code: String, _ detail: String) {
        outcome = .deadLetter(code: code, detail: detail)
        events.removeAll()
    }

    package var isDeadLetter: Bool {
        if case .deadLetter = outcome { return true }
        return false
    }
}

/// A bridge format: turns its records into canonical events.
///
/// `adapt` is a pure function of the record (its bytes and Kafka coordinates): the same
/// record always yields the same events with the same `eventId`s, which is what makes a
/// redelivery after a crash of the stage change nothing downstream. What needs more than
/// one record (the message a receipt refers to, the order across topics) is the stage's
/// job, through `AdaptedEvent.waitsFor` and `chatIsGuess`.
package protocol BridgeAdapter: Sendable {
    /// The format's name: `--format`, and `source.format` of the events it makes.
    var format: String { get }

    /// Maps one record. Never throws or crashes on bad input: that is a dead letter.
    /// - Parameter tape: parse scratch, reused across records by the caller's thread.
    func adapt(_ record: BridgeRecord, tape: JSONTape) -> AdaptedRecord
}

/// The formats this build reads.
package enum BridgeFormats {
    /// Every format name, for `--format` help and errors.
    package static let names = [EvolutionAdapter.formatName, BaileysAdapter.formatName, WWebJSAdapter.formatName]

    /// The adapter for `name`, nil when this build has none.
    package static func adapter(named name: String) -> (any BridgeAdapter)? {
        switch name {
        case EvolutionAdapter.formatName: return EvolutionAdapter()
        case BaileysAdapter.formatName: return BaileysAdapter()
        case WWebJSAdapter.formatName: return WWebJSAdapter()
        default: return nil
        }
    }
}
