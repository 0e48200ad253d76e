// Appends to a partition log forever, printing `synced OFFSET` each time everything up to
// OFFSET is acknowledged as on disk. The crash tests SIGKILL it at random moments and
// then check that every acknowledged record survived.
//
// Usage: LogCrashWriter DIR POLICY BATCH_SIZE MAX_SEGMENT_BYTES [LIMIT]
// With LIMIT it stops (exit 0) once the log holds LIMIT records. With the environment's
// LOG_CRASH_RETAIN_BYTES=N it applies retention (at most N bytes, everything synced
// counting as checkpointed) after every synced batch and prints `retained BASE`.
#if canImport(Glibc)
import Glibc
#endif
import EventLog
import KafkaTestSupport

func say(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { bytes in _ = write(1, bytes.baseAddress, bytes.count) }
}

let arguments = CommandLine.arguments
let limit = arguments.count == 6 ? Int64(arguments[5]) ?? Int64.max : Int64.max
guard arguments.count == 5 || arguments.count == 6, let policy = FsyncPolicy(arguments[2]), let batchSize = Int(arguments[3]),
    let maxSegmentBytes = Int(arguments[4])
else {
    say("usage: LogCrashWriter DIR POLICY BATCH_SIZE MAX_SEGMENT_BYTES [LIMIT]")
    exit(64)
}
do {
    let writer = try PartitionWriter(
        directory: arguments[1], topic: "crash", partition: 0,
        options: .init(fsync: policy, maxSegmentBytes: maxSegmentBytes))
    var next = (writer.lastOffset ?? -1) + 1
    say("open \(writer.lastOffset ?? -1)")
    var batches = 0
    let retention = getenv("LOG_CRASH_RETAIN_BYTES").flatMap { Int64(String(cString: $0)) }.map { bytes in
        LogRetention(policy: RetentionPolicy(maxBytes: bytes))
    }
    while next < limit {
        for _ in 0..<min(Int64(batchSize), limit - next) {
            let value = LogTestValues.value(offset: next)
            let key = Array("key-\(next % 17)".utf8)
            try key.withUnsafeBytes { keyBytes in
                try value.withUnsafeBytes { valueBytes in
                    try writer.stage(offset: next, timestamp: 1_700_000_000_000 + next, key: keyBytes, value: valueBytes)
                }
            }
            next += 1
        }
        var durable = try writer.commit()
        batches += 1
        if !durable && batches % 5 == 0 {
            try writer.sync()  // `interval` and `never` acknowledge only explicit syncs
            durable = true
        }
        if durable { say("synced \(next - 1)") }
        if durable, let retention {
            let outcome = try retention.enforce(directory: arguments[1], topic: "crash", partition: 0, keepAfter: next - 1, now: 0)
            say("retained \(outcome.base?.baseOffset ?? 0)")
        }
    }
    try writer.sync()
    say("synced \(next - 1)")
} catch {
    say("error \(error)")
    exit(1)
}
