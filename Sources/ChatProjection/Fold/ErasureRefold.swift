import ChatEvents
import EventLog

/// A device folded again from its partition's log after a chat or contact erasure, as a
/// replay from zero gives it once ingest has redacted what the erasure names: the records
/// that the device's erasures up to that point name are left out whether or not their
/// redaction has run yet. `ingest` refolds after redacting; `serve`, which follows the log
/// from another process and may read an erasure before its redaction, refolds with this,
/// so both hold the same device (version included) at the same position.
package enum ErasureRefold {
    /// The device `deviceId` folded from the start of `partition`'s log through `offset`
    /// (an erasure record's), every record one of its erasures names left out; nil if
    /// nothing of it is left. The caller makes sure retention has not removed the log's
    /// start (`EventLog.retentionBase`), as ingest does before its refold.
    /// - Throws: `EventLogError` for a damaged log.
    package static func device(_ deviceId: String, log: EventLog, topic: String, partition: Int32, through offset: Int64) throws -> DeviceProjection? {
        let reader = log.reader(topic: topic, partition: partition)
        let digestName = DeviceProjection.digestName(deviceId)
        let parser = EventParser()
        // The device's erasures: their records carry the reason `erasure: <scope>`, and
        // their values (kept by the redaction) name the device by digest.
        var selectors: [ErasureSelector] = []
        try reader.forEach(from: 0) { record in
            guard record.offset <= offset else { return false }
            guard LogErasure(record) != nil, let value = record.value, let event = try? parser.parse(value),
                event.deviceId == digestName, case .ledgerErased(let erasure) = event.payload,
                let selector = ErasureSelector(erasure, deviceDigestName: event.deviceId, erasureOffset: record.offset)
            else { return true }
            selectors.append(selector)
            return true
        }
        let key = Array(deviceId.utf8)
        var state = ProjectionState()
        try reader.forEach(from: 0) { record in
            guard record.offset <= offset else { return false }
            guard record.kind == .event, let recordKey = record.key, recordKey.elementsEqual(key) else { return true }
            // An erasure record loses its key to its own redaction: the refold after it
            // never reads it.
            var named = selectors.contains { $0.erasureOffset == record.offset }
            for index in selectors.indices where record.offset < selectors[index].erasureOffset {
                // Every selector sees every earlier record, in order: a contact's aliases
                // are learnt from the `contact.aliased` events as they come.
                if selectors[index].fields(record).contains(.value) { named = true }
            }
            let position = LogPosition(partition: partition, offset: record.offset)
            state.fold(named ? .redacted : StoredRecord(record, parser: parser), at: position, chainHash: record.chainHash)
            return true
        }
        return state.devices[deviceId]
    }
}
