// Ingests a deterministic stream of events into partition 0 of DIR through `IngestPipeline`
// (no Kafka: messages handed to `accept` as the consumer would), with a checkpoint due
// every CHECKPOINT_EVERY records. Checkpoint 1 is written normally; checkpoint 2 stops in
// the background writer after its temporary file is written and synced, just before the
// rename, and prints `paused 2` — while ingest goes on. Prints `batch LAST_OFFSET` after
// each batch is written and applied, and `done` after LIMIT records; then waits to be killed.
//
// Usage: CheckpointCrashWriter DIR LIMIT CHECKPOINT_EVERY
#if canImport(Glibc)
import Glibc
#endif
import ChatEvents
import ChatProjection
import EventLog
import Ingest
import LedgerSupport

func say(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { bytes in _ = write(1, bytes.baseAddress, bytes.count) }
}

/// The stream the crash test folds for reference: the same seed, the same events.
func traffic() -> TrafficModel {
    TrafficModel(.init(devices: 40, chatsPerDevice: 30, seed: 77, duplicateRate: 0.02))
}

let arguments = CommandLine.arguments
guard arguments.count == 4, let limit = Int64(arguments[2]), let every = Int(arguments[3]) else {
    say("usage: CheckpointCrashWriter DIR LIMIT CHECKPOINT_EVERY")
    exit(64)
}
do {
    var checkpoints = CheckpointStore(dataDirectory: arguments[1])
    checkpoints.beforeRename = { _, sequence in
        guard sequence >= 2 else { return }
        say("paused \(sequence)")
        while true { pause() }  // until SIGKILL: the write never completes
    }
    let pipeline = try IngestPipeline(
        log: EventLog(dataDirectory: arguments[1]),
        options: .init(topic: "wa.device-events", fsync: .batch, checkpointEveryRecords: every, checkpointEverySeconds: 1e9),
        logger: Logger(label: "crash-writer"), checkpoints: checkpoints)
    var model = traffic()
    var offset: Int64 = 0
    while offset < limit {
        for _ in 0..<100 where offset < limit {
            let event = model.next().event
            let key = Array(event.deviceId.utf8)
            let value = EventEncoder.encode(event)
            try key.withUnsafeBytes { keyBytes in
                try value.withUnsafeBytes { valueBytes in
                    try pipeline.accept(partition: 0, offset: offset, timestamp: 1_700_000_000_000 + offset, key: keyBytes, value: valueBytes)
                }
            }
            offset += 1
        }
        try pipeline.commitBatch()
        pipeline.waitUntilApplied()
        try pipeline.checkpointIfDue()
        say("batch \(offset - 1)")
    }
    say("done")
    while true { pause() }
} catch {
    say("error \(error)")
    exit(1)
}
