import ChatEvents
import ChatProjection
import LedgerSupport

/// An operator's erasure request as the Kafka record `chatledger erase` publishes on the
/// canonical topic: keyed by the device id (so it lands on the device's partition, after
/// every event of the device already there), its value a `ledger.erased` event naming
/// the device, chat or contact by digest only.
package struct ErasureRequest: Sendable {
    package var deviceId: String
    package var scope: ErasureScope
    /// The chat or contact id (nil for a device erasure).
    package var subjectId: String?
    package var reason: String

    /// A request; exactly one of `chatId` and `contactId` may be given, or neither (the whole device).
    /// - Throws: `ErasureRequest.Invalid` when both are given, an id is empty, or the reason is.
    package init(deviceId: String, chatId: String? = nil, contactId: String? = nil, reason: String) throws(Invalid) {
        guard !deviceId.isEmpty else { throw Invalid(message: "the device id is empty") }
        guard !reason.isEmpty else { throw Invalid(message: "the reason is empty") }
        switch (chatId, contactId) {
        case (nil, nil): scope = .device
        case (let chat?, nil): scope = .chat; subjectId = chat
        case (nil, let contact?): scope = .contact; subjectId = contact
        case (_?, _?): throw Invalid(message: "name a chat or a contact, not both")
        }
        if subjectId?.isEmpty == true { throw Invalid(message: "the chat or contact id is empty") }
        let limits = EventLimits.default
        // Ids longer than any event carries name nothing; the event must be one ingest takes.
        guard deviceId.utf8.count <= limits.maxIdentifierBytes else {
            throw Invalid(message: "the device id is longer than any event's (\(limits.maxIdentifierBytes) bytes at most)")
        }
        if let subjectId, subjectId.utf8.count > limits.maxAddressBytes {
            throw Invalid(message: "the chat or contact id is longer than any event's (\(limits.maxAddressBytes) bytes at most)")
        }
        self.deviceId = deviceId
        self.reason = reason
        let (key, value) = record(eventId: "erasure-check", occurredAt: 0)
        do {
            _ = try EventParser().parse(value, kafkaKey: key)
        } catch {
            throw Invalid(message: "ingest would not take this erasure (\(error.message)); shorten the reason")
        }
    }

    /// Why a request cannot be made.
    package struct Invalid: Error, Sendable, CustomStringConvertible {
        package var message: String
        package var description: String { message }
    }

    /// `sha256:` and the lowercase hex SHA-256 of an id (`DeviceProjection.digestName`).
    package static func digestName(_ id: String) -> String { DeviceProjection.digestName(id) }

    /// The event, with `eventId` and `occurredAt` (ms) given.
    package func event(eventId: String, occurredAt: Int64) -> Event {
        Event(
            eventId: eventId, deviceId: Self.digestName(deviceId), occurredAt: occurredAt, chatId: nil,
            payload: .ledgerErased(LedgerErasure(scope: scope, subject: subjectId.map(Self.digestName), reason: reason)))
    }

    /// The Kafka record: key (the device id) and value (the canonical event).
    package func record(eventId: String, occurredAt: Int64) -> (key: [UInt8], value: [UInt8]) {
        (Array(deviceId.utf8), EventEncoder.encode(event(eventId: eventId, occurredAt: occurredAt)))
    }
}
