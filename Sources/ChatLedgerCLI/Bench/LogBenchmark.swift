#if canImport(Glibc)
import Glibc
#endif
import EventLog
import Foundation
import LedgerSupport

/// `bench log`: append throughput per fsync policy against the raw limit of the same
/// disk measured in the same run (plain `write` + `fdatasync` of the same bytes and
/// batch size), and sequential read and verify throughput from the page cache.
enum LogBenchmark {
    static let topic = "wa.device-events"

    static func run(directory: String, batchSize: Int, seconds: Double) throws -> BenchReport {
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let value = [UInt8](repeating: 0x61, count: 200)  // a 200-byte event
        let key = Array("dev-12345".utf8)
        var report = BenchReport(bench: "log")

        // The raw baseline writes exactly the bytes the log writes for one batch.
        let sampleDirectory = directory + "/sample"
        let sample = try PartitionWriter(directory: sampleDirectory, topic: topic, partition: 0, options: .init(fsync: .never))
        try key.withUnsafeBytes { keyBytes in
            try value.withUnsafeBytes { valueBytes in
                for offset in 0..<batchSize {
                    try sample.stage(offset: Int64(offset), timestamp: 1_700_000_000_000, key: keyBytes, value: valueBytes)
                }
            }
        }
        try sample.sync()
        let segmentName = try FileManager.default.contentsOfDirectory(atPath: sampleDirectory).first { $0.hasSuffix(".seg") } ?? ""
        let segmentBytes = try Array(Data(contentsOf: URL(fileURLWithPath: sampleDirectory + "/" + segmentName)))
        let sampleBatch = Array(segmentBytes[(Int(segmentBytes[10]) | Int(segmentBytes[11]) << 8)...])
        let recordBytes = Double(sampleBatch.count) / Double(batchSize)

        // Raw and per-batch runs alternate twice, so drift on a noisy disk hits both alike.
        var raw = (records: 0, seconds: 0.0)
        var batch = (records: 0, seconds: 0.0)
        for round in 0..<2 {
            let rawRun = try rawAppend(path: directory + "/raw-\(round)", batch: sampleBatch, batchSize: batchSize, seconds: seconds / 2)
            raw = (raw.records + rawRun.records, raw.seconds + rawRun.seconds)
            let logRun = try logAppend(directory: directory + "/batch-\(round)", policy: .batch, key: key, value: value, batchSize: batchSize, seconds: seconds / 2)
            batch = (batch.records + logRun.records, batch.seconds + logRun.seconds)
        }
        let rawRate = Double(raw.records) / raw.seconds
        let batchRate = Double(batch.records) / batch.seconds
        report.add("raw_write_fdatasync_records_per_s", rawRate, "records/s")
        report.add("raw_write_fdatasync_mb_per_s", rawRate * recordBytes / 1e6, "MB/s")
        report.add("append_batch_records_per_s", batchRate, "records/s")
        report.add("append_batch_mb_per_s", batchRate * recordBytes / 1e6, "MB/s")
        report.add("append_batch_vs_raw", batchRate / rawRate, "ratio")
        for (name, policy) in [("always", FsyncPolicy.always), ("every_10ms", .interval(milliseconds: 10)), ("never", .never)] {
            let run = try logAppend(directory: directory + "/" + name, policy: policy, key: key, value: value, batchSize: batchSize, seconds: seconds / 2)
            let rate = Double(run.records) / run.seconds
            report.add("append_\(name)_records_per_s", rate, "records/s")
            report.add("append_\(name)_mb_per_s", rate * recordBytes / 1e6, "MB/s")
        }
        // The chain over digests (format 3, what is written) against the chain over bodies
        // (format 1), both without fsync, alternating so load changes hit both alike.
        var chains = (digests: (records: 0, seconds: 0.0), bodies: (records: 0, seconds: 0.0))
        for round in 0..<2 {
            let digests = try logAppend(
                directory: directory + "/digests-\(round)", policy: .never, key: key, value: value, batchSize: batchSize, seconds: seconds / 4)
            chains.digests = (chains.digests.records + digests.records, chains.digests.seconds + digests.seconds)
            let bodies = try logAppend(
                directory: directory + "/bodies-\(round)", policy: .never, key: key, value: value, batchSize: batchSize, seconds: seconds / 4,
                chain: .overBodies)
            chains.bodies = (chains.bodies.records + bodies.records, chains.bodies.seconds + bodies.seconds)
        }
        let bodyChainRate = Double(chains.bodies.records) / chains.bodies.seconds
        report.add("append_never_body_chain_records_per_s", bodyChainRate, "records/s")
        report.add("digest_chain_vs_body_chain", Double(chains.digests.records) / chains.digests.seconds / bodyChainRate, "ratio")

        // Reading: a log of ~1,000,000 records (about 290 MB), read back from the page cache.
        let readDirectory = directory + "/read"
        let writer = try PartitionWriter(directory: readDirectory, topic: topic, partition: 0, options: .init(fsync: .never))
        let readRecords = 1_000_000
        try key.withUnsafeBytes { keyBytes in
            try value.withUnsafeBytes { valueBytes in
                for offset in 0..<readRecords {
                    try writer.stage(offset: Int64(offset), timestamp: 0, key: keyBytes, value: valueBytes)
                    if offset % 1000 == 999 { try writer.commit() }
                }
            }
        }
        try writer.sync()
        let reader = PartitionReader(directory: readDirectory, topic: topic, partition: 0)
        var readCount = 0
        var readBytes = 0
        let readSeconds = try measureSeconds {
            try reader.forEach { record in
                readCount += 1
                readBytes += record.frameLength
                return true
            }
        }
        report.add("read_crc_checked_mb_per_s", Double(readBytes) / readSeconds / 1e6, "MB/s")
        report.add("read_crc_checked_records_per_s", Double(readCount) / readSeconds, "records/s")
        // Verify reads the same partition through the data-directory layout.
        let root = directory + "/verify-root/log/" + topic
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: readDirectory, toPath: root + "/0")
        var verified = 0
        let chainSeconds = try measureSeconds {
            let verification = try LogVerifier.verify(EventLog(dataDirectory: directory + "/verify-root"))
            verified = verification.partitions.first?.records ?? 0
        }
        report.add("verify_crc_and_chain_mb_per_s", Double(readBytes) / chainSeconds / 1e6, "MB/s")
        report.add("verify_crc_and_chain_records_per_s", Double(verified) / chainSeconds, "records/s")
        report.add("record_bytes", recordBytes, "bytes")
        report.add("batch_size", Double(batchSize), "records")
        report.notes.append("200-byte values, key \(key.count) bytes, topic \(topic); directory \(directory)")
        report.notes.append("CRC32C \(CRC32C.isHardwareAccelerated ? "SSE4.2" : "table"), SHA-256 \(SHA256.isHardwareAccelerated ? "SHA extensions" : "portable")")
        return report
    }

    /// The disk's limit: the same bytes, the same batch size, `write` + `fdatasync`.
    private static func rawAppend(path: String, batch: [UInt8], batchSize: Int, seconds: Double) throws -> (records: Int, seconds: Double) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw SystemError(call: "open", errno: errno) }
        defer { close(descriptor) }
        var records = 0
        let start = ContinuousClock.now
        while (ContinuousClock.now - start) / .seconds(1) < seconds {
            try batch.withUnsafeBytes { bytes in
                _ = try SystemCall.run("write") { write(descriptor, bytes.baseAddress, bytes.count) }
            }
            try SystemCall.run("fdatasync") { fdatasync(descriptor) }
            records += batchSize
        }
        return (records, (ContinuousClock.now - start) / .seconds(1))
    }

    private static func logAppend(
        directory: String, policy: FsyncPolicy, key: [UInt8], value: [UInt8], batchSize: Int, seconds: Double,
        chain: LogChain = .overDigests
    ) throws -> (records: Int, seconds: Double) {
        let writer = try PartitionWriter(directory: directory, topic: topic, partition: 0, options: .init(fsync: policy, chain: chain))
        var offset: Int64 = 0
        let start = ContinuousClock.now
        try key.withUnsafeBytes { keyBytes in
            try value.withUnsafeBytes { valueBytes in
                while (ContinuousClock.now - start) / .seconds(1) < seconds {
                    for _ in 0..<batchSize {
                        try writer.stage(offset: offset, timestamp: 1_700_000_000_000, key: keyBytes, value: valueBytes)
                        offset += 1
                    }
                    try writer.commit()
                }
            }
        }
        try writer.sync()
        return (Int(offset), (ContinuousClock.now - start) / .seconds(1))
    }
}
