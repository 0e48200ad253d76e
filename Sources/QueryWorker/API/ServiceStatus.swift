import ChatEvents
import ChatProjection
import EventLog

/// Where a process's records come from and how far that source reaches, for
/// `GET /api/v1/status`. The process that owns the source fills it (through the closure
/// `QueryAPI` is given): `run` from the Kafka consumer, `serve` from the log it follows.
///
/// New facts about the source (for example records the broker lost before ingest read
/// them) belong here, next to `endOffsets`, and in `ServiceStatus.json`.
package struct SourceStatus: Sendable, Equatable {
    /// What the records are read from.
    package enum Kind: String, Sendable {
        /// Kafka, read by ingest in this process (`run`).
        case kafka
        /// The event log another process writes (`serve`).
        case log
    }

    /// What the records are read from.
    package var kind: Kind
    /// Per partition, the next offset the source will give: Kafka's high watermark, or
    /// the end of the log as last read. A partition missing here has no known end yet.
    package var endOffsets: [Int32: Int64]

    /// A source; without `endOffsets`, no partition's end is known (no lag is reported).
    package init(kind: Kind, endOffsets: [Int32: Int64] = [:]) {
        self.kind = kind
        self.endOffsets = endOffsets
    }
}

/// The answer of `GET /api/v1/status`: readiness, how far each partition is applied and
/// how far behind its source it is, and what the projection has counted so far.
struct ServiceStatus {
    var ready: Bool
    var role: APIKeys.Role
    var source: SourceStatus
    /// Per partition, the last offset the projection applied.
    var appliedOffsets: [Int32: Int64]
    var devices: Int
    var counts: ProjectionState.Counts
    /// Gaps in the log (records the broker lost) no operator has acknowledged: while there
    /// is one, the status is `data lost` and not ready, as `/readyz` says.
    var lost: [LogGap] = []

    /// `{"status","ready","role","source","partitions":[{partition, appliedOffset, endOffset, lag}],"devices","counts":{…}}`,
    /// plus `"lost":[…]` with `data lost`. `lag` is the records the source has that the
    /// projection has not applied yet (null while the source's end is unknown).
    var json: [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("status", !lost.isEmpty ? "data lost" : ready ? "ready" : "catching up")
        writer.field("ready", ready && lost.isEmpty)
        if !lost.isEmpty { QueryAPI.writeLostRanges(lost, &writer) }
        writer.field("role", role.rawValue)
        writer.field("source", source.kind.rawValue)
        writer.key("partitions")
        writer.beginArray()
        for partition in Set(appliedOffsets.keys).union(source.endOffsets.keys).sorted() {
            let applied = appliedOffsets[partition]
            let end = source.endOffsets[partition]
            writer.beginObject()
            writer.field("partition", Int64(partition))
            writer.key("appliedOffset")
            if let applied { writer.integer(applied) } else { writer.null() }
            writer.key("endOffset")
            if let end { writer.integer(end) } else { writer.null() }
            writer.key("lag")
            if let end { writer.integer(max(0, end - ((applied ?? -1) + 1))) } else { writer.null() }
            writer.endObject()
        }
        writer.endArray()
        writer.field("devices", Int64(devices))
        writer.key("counts")
        writer.beginObject()
        writer.field("applied", Int64(counts.applied))
        writer.field("duplicates", Int64(counts.duplicate))
        writer.field("ignored", Int64(counts.ignored))
        writer.field("deadLetters", Int64(counts.deadLetters))
        writer.field("unreadable", Int64(counts.unreadable))
        writer.endObject()
        writer.endObject()
        return writer.bytes
    }
}
