import ChatEvents

/// The mapping of one bridge record: its envelope (device, own ids, time), and the events
/// made so far. Each format adds its mapping in an extension (`MappingContext+Evolution`,
/// `+Baileys`, `+WWebJS`); what Baileys-shaped payloads share (messages, participants,
/// aliases) is in `MappingContext+WAMessage`.
struct MappingContext {
    let record: BridgeRecord
    let format: String
    var deviceId = ""
    /// The connected account's own id (Evolution's `sender`, the Baileys and wwebjs envelopes'
    /// `me`), canonical.
    var ownId: String?
    /// The account's own LID, when the envelope gives it (Baileys `me.lid`).
    var ownLid: String?
    /// The envelope's time (ms): `timestamp`, else Kafka's.
    var envelopeTime: Int64 = 0
    private(set) var nextIndex = 0
    private var aliases = Set<String>()
    private(set) var events: [AdaptedEvent] = []
    private var sharedSource: EventSource.Box?

    init(record: BridgeRecord, format: String) {
        self.record = record
        self.format = format
    }

    static let maxIdentifierBytes = 128

    /// Parses `record` and maps it with `map`: the checks every format shares (a tombstone,
    /// the size limit, JSON) and the dead letter for whatever `map` throws.
    static func adapt(
        _ record: BridgeRecord, tape: JSONTape, format: String, maxRecordBytes: Int,
        _ map: (inout MappingContext, JSONValue, inout AdaptedRecord) throws(AdaptError) -> Void
    ) -> AdaptedRecord {
        var result = AdaptedRecord()
        guard let value = record.value else {
            result.deadLetter("invalid_json", "a tombstone (no value)")
            return result
        }
        guard value.count <= maxRecordBytes else {
            result.secret = SecretScrubber.secretValue(in: value)
            result.deadLetter("too_large", "a record of \(value.count) bytes exceeds the limit of \(maxRecordBytes)")
            return result
        }
        do {
            try tape.parse(value)
        } catch {
            result.secret = SecretScrubber.secretValue(in: value)
            result.deadLetter(error.code.rawValue, error.description)
            return result
        }
        var context = MappingContext(record: record, format: format)
        do {
            try map(&context, tape.root, &result)
        } catch {
            result.deadLetter(error.code, error.description)
        }
        return result
    }

    /// Whether `id` (canonical) is the account itself.
    func isOwn(_ id: String) -> Bool { id == ownId || id == ownLid }

    // MARK: - Ids and aliases

    /// `id` in the phone form when `alt` gives the other form of a LID–phone pair (recording
    /// the pair as `contact.aliased`); else `id` itself.
    mutating func resolveAlias(_ id: String, alt: JSONValue?, _ path: @autoclosure () -> String) throws(AdaptError) -> String {
        guard let other = Self.address(alt), other != id else { return id }
        guard let pair = aliasPair(id, other) else { return id }
        return pair.phone
    }

    /// When one of `a` and `b` is a LID and the other a phone id: emits `contact.aliased`
    /// (once per record) and returns the pair.
    mutating func aliasPair(_ a: String, _ b: String) -> (lid: String, phone: String)? {
        let (domainA, domainB) = (WhatsAppID.domain(of: a), WhatsAppID.domain(of: b))
        let pair: (lid: String, phone: String)
        if domainA == .lid, domainB == .phone {
            pair = (a, b)
        } else if domainA == .phone, domainB == .lid {
            pair = (b, a)
        } else {
            return nil
        }
        // Evolution's participantsData falls back to the LID's digits as "phoneNumber".
        guard WhatsAppID.user(of: pair.lid) != WhatsAppID.user(of: pair.phone) else { return nil }
        if aliases.insert(pair.lid + " " + pair.phone).inserted {
            if pair.lid == ownLid, ownId == nil { ownId = pair.phone }
            events.append(AdaptedEvent(event: Self.aliasEvent(deviceId: deviceId, phone: pair.phone, lid: pair.lid, at: envelopeTime, source: sourceBox())))
        }
        return pair
    }

    /// The `contact.aliased` event for a pair, its id derived from the pair.
    static func aliasEvent(deviceId: String, phone: String, lid: String, at time: Int64, source: EventSource.Box?) -> Event {
        Event(
            eventIdText: EventIdentity.aliasEventIdText(deviceId: deviceId, chatId: phone, alias: lid), deviceId: deviceId,
            occurredAt: time, chatIdText: InlineString(phone), payload: .contactAliased(ContactAliased(alias: lid)), sourceBox: source)
    }

    /// A 1:1 chat's id is also its contact's id; groups and lists have no single sender.
    func personalChat(_ chatId: String) -> String? {
        switch WhatsAppID.domain(of: chatId) {
        case .phone, .lid: return chatId
        default: return nil
        }
    }

    var source: EventSource {
        EventSource(format: format, topic: record.topic, partition: record.partition, offset: record.offset)
    }

    /// `source`, boxed once per record and shared by its events.
    mutating func sourceBox() -> EventSource.Box {
        if let box = sharedSource { return box }
        let box = EventSource.Box(source)
        sharedSource = box
        return box
    }

    mutating func emit(
        chatId: String?, at time: Int64, _ payload: EventPayload, waitsFor: String? = nil, chatIsGuess: Bool = false,
        dropIfUnresolved: Bool = false, guessMayBeOwn: Bool = false
    ) {
        let eventId = EventIdentity.eventIdText(
            format: format, topic: record.topic, partition: record.partition, offset: record.offset, index: nextIndex)
        nextIndex += 1
        let event = Event(
            eventIdText: eventId, deviceId: deviceId, occurredAt: max(0, time), chatIdText: chatId.map(InlineString.init), payload: payload,
            sourceBox: sourceBox())
        events.append(
            AdaptedEvent(
                event: event, waitsFor: waitsFor, chatIsGuess: chatIsGuess, dropIfUnresolved: dropIfUnresolved, guessMayBeOwn: guessMayBeOwn))
    }

    // MARK: - Field readers

    func required(_ value: JSONValue?, _ path: @autoclosure () -> String) throws(AdaptError) -> JSONValue {
        guard let value, !value.isNull else { throw .missing(path()) }
        return value
    }

    func requiredObject(_ value: JSONValue?, _ path: @autoclosure () -> String) throws(AdaptError) -> JSONValue {
        let value = try required(value, path())
        guard value.kind == .object else { throw .wrongType(path(), expected: "an object", found: value) }
        return value
    }

    func requiredString(_ value: JSONValue?, _ path: @autoclosure () -> String) throws(AdaptError) -> String {
        let value = try required(value, path())
        guard let text = value.string else { throw .wrongType(path(), expected: "a string", found: value) }
        guard !text.isEmpty else { throw .invalid(path(), "must not be empty") }
        return text
    }

    func requiredIdentifier(_ value: JSONValue?, _ path: @autoclosure () -> String) throws(AdaptError) -> String {
        let text = try requiredString(value, path())
        guard text.utf8.count <= Self.maxIdentifierBytes else { throw .invalid(path(), "longer than 128 bytes") }
        return text
    }

    func optionalIdentifier(_ value: JSONValue?, _ path: @autoclosure () -> String) throws(AdaptError) -> String? {
        guard let value, !value.isNull else { return nil }
        guard let text = value.string else { throw .wrongType(path(), expected: "a string", found: value) }
        guard text.utf8.count <= Self.maxIdentifierBytes else { throw .invalid(path(), "longer than 128 bytes") }
        return text
    }

    func requiredAddress(_ value: JSONValue?, _ path: @autoclosure () -> String) throws(AdaptError) -> String {
        // Nearly every id: plain ASCII, made canonical from the record's bytes directly.
        if let ascii = value?.asciiText, !ascii.isEmpty {
            guard let id = WhatsAppID.canonical(utf8: ascii) else { throw .invalid(path(), "not a WhatsApp id (empty or over 256 bytes)") }
            return id
        }
        let text = try requiredString(value, path())
        guard let id = WhatsAppID.canonical(text) else { throw .invalid(path(), "not a WhatsApp id (empty or over 256 bytes)") }
        return id
    }

    func optionalAddress(_ value: JSONValue?, _ path: @autoclosure () -> String) throws(AdaptError) -> String? {
        guard let value, !value.isNull, !value.isEmptyString else { return nil }
        return try requiredAddress(value, path())
    }

    /// A string value as a canonical id; nil when it is absent, not a string or not an id.
    static func address(_ value: JSONValue?) -> String? {
        guard let value else { return nil }
        if let ascii = value.asciiText { return WhatsAppID.canonical(utf8: ascii) }
        return value.string.flatMap(WhatsAppID.canonical)
    }

    func optionalBool(_ value: JSONValue?, _ path: @autoclosure () -> String) throws(AdaptError) -> Bool {
        guard let value, !value.isNull else { return false }
        guard let flag = value.bool else { throw .wrongType(path(), expected: "a boolean", found: value) }
        return flag
    }

    /// Calls `body` with `data` when it is an object, or with each element when it is an
    /// array of objects (some events carry one, some a list).
    static func forEachObject(
        _ data: JSONValue, _ path: String, _ body: (JSONValue, String) throws(AdaptError) -> Void
    ) throws(AdaptError) {
        switch data.kind {
        case .object:
            try body(data, path)
        case .array:
            for (index, element) in data.elements.enumerated() {
                let elementPath = "\(path)[\(index)]"
                guard element.kind == .object else { throw .wrongType(elementPath, expected: "an object", found: element) }
                try body(element, elementPath)
            }
        default:
            throw .wrongType(path, expected: "an object or an array", found: data)
        }
    }

}
