import ChatEvents
import EventLog

/// What `verify` checks of chat and contact erasures beyond the log's own rules
/// (`LogVerifier`): that no record such an erasure names still holds its value.
///
/// A redaction keeps the field's digest, which is what the chain covers, so a value
/// written back over a marker (its flag cleared) passes the chain. For a device erasure the
/// log alone finds it (every record keyed by the device); for a chat or a contact it takes
/// the event's chat id (and the contact's `contact.aliased` links), so it is checked here,
/// with the selector the redaction itself used (`ErasureSelector`).
package enum ErasureVerifier {
    /// A record that a chat or contact erasure names, with its value whole.
    package struct Finding: Sendable, Equatable {
        package var partition: Int32
        package var offset: Int64
        package var erasureOffset: Int64
    }

    /// Every record of `topic` that one of `erasures` (those `LogVerifier` found, of any
    /// scope; only chat and contact ones are checked) names and whose value is not
    /// redacted, in partition and offset order. Only partitions with such an erasure are
    /// read; one that cannot be read is left to `LogVerifier`, which reports its damage.
    package static func unredactedValues(log: EventLog, topic: String, erasures: [LogErasure]) -> [Finding] {
        let parser = EventParser()
        var findings: [Finding] = []
        let byPartition = Dictionary(grouping: erasures.filter { $0.scope != .device }, by: \.partition)
        for (partition, partitionErasures) in byPartition.sorted(by: { $0.key < $1.key }) {
            let reader = log.reader(topic: topic, partition: partition)
            do {
                var selectors: [ErasureSelector] = []
                for erasure in partitionErasures.sorted(by: { $0.offset < $1.offset }) {
                    try reader.forEach(from: erasure.offset) { record in
                        if record.offset == erasure.offset, let value = record.value, let event = try? parser.parse(value),
                            case .ledgerErased(let erased) = event.payload,
                            let selector = ErasureSelector(erased, deviceDigestName: event.deviceId, erasureOffset: record.offset)
                        {
                            selectors.append(selector)
                        }
                        return false
                    }
                }
                guard let last = selectors.map(\.erasureOffset).max() else { continue }
                for index in selectors.indices { try selectors[index].learnAliases(in: reader) }
                var found: [Finding] = []
                try reader.forEach { record in
                    guard record.offset < last else { return false }
                    // Records of version 1/2 segments cannot be redacted (their chain covers
                    // the bytes): ingest leaves them whole, and retention removes them in time.
                    guard record.chainsDigests else { return true }
                    for index in selectors.indices where record.offset < selectors[index].erasureOffset {
                        // A redacted value reads as absent; one put back reads whole again.
                        if selectors[index].fields(record).contains(.value), record.value != nil {
                            found.append(Finding(partition: partition, offset: record.offset, erasureOffset: selectors[index].erasureOffset))
                        }
                    }
                    return true
                }
                findings += found
            } catch {
                continue
            }
        }
        return findings
    }
}
