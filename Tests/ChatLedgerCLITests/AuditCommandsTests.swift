import ChatEvents
import ChatProjection
import EventLog
import Foundation
import KafkaTestSupport
import Testing

@Suite("export, replay and checkpoint verification, as real processes")
struct AuditCommandsTests {
    /// A data directory with 3,000 simulated events over 2 partitions (keyed as Kafka would
    /// place them: one device, one partition) and a checkpoint after the first 1,500; each
    /// event's value as `encode` makes it (a bridge's bytes need not be the canonical form).
    static func makeData(
        encode: (Event) -> [UInt8] = { EventEncoder.encode($0) }
    ) throws -> (data: String, events: [(LogPosition, [UInt8], Event)]) {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("audit-\(UUID().uuidString)").path
        let log = EventLog(dataDirectory: data)
        var model = TrafficModel(.init(devices: 6, chatsPerDevice: 10, seed: 31))
        var writers: [Int32: PartitionWriter] = [:]
        var next: [Int32: Int64] = [:]
        var written: [(LogPosition, [UInt8], Event)] = []
        var state = ProjectionState()
        for index in 0..<3_000 {
            let event = model.next().event
            let partition: Int32 = (Int(event.deviceId.dropFirst(4)) ?? 0) % 2 == 0 ? 0 : 1
            let writer = try writers[partition] ?? log.openWriter(topic: "wa.device-events", partition: partition)
            writers[partition] = writer
            let offset = next[partition, default: 0]
            next[partition] = offset + 1
            let value = encode(event)
            try writer.append([LogRecord(offset: offset, timestamp: 1_000 + Int64(index), key: Array(event.deviceId.utf8), value: value)])
            let position = LogPosition(partition: partition, offset: offset)
            written.append((position, value, event))
            state.apply(event, at: position, chainHash: writer.chainHash)
            if index == 1_499 { try CheckpointStore(dataDirectory: data).write(state, topic: "wa.device-events") }
        }
        return (data, written)
    }

    @Test("export prints each event exactly as received, one per line: the lines are byte for byte the produced values, in log order")
    func exportAsReceived() throws {
        // Not the canonical encoding: whitespace a bridge may send, which a re-encoding would drop.
        let (data, events) = try Self.makeData { Array("{ ".utf8) + EventEncoder.encode($0).dropFirst().dropLast() + Array(" }".utf8) }
        defer { try? FileManager.default.removeItem(atPath: data) }
        let run = try ChatLedgerProcess.run(["export", "--data", data])
        #expect(run.status == 0, "\(run.standardError)")
        let lines = run.standardOutput.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(run.standardOutput.hasSuffix("\n"))
        let expected = events.sorted { $0.0 < $1.0 }.map(\.1)
        #expect(lines.count == expected.count)
        for (line, value) in zip(lines, expected) where Array(line.utf8) != value {
            Issue.record("not the event as received: \(line) instead of \(String(decoding: value, as: UTF8.self))")
            break
        }
        let chat = try #require(events.first { $0.2.chatId != nil && $0.2.chatId != "status@broadcast" }?.2)
        let oneChat = try ChatLedgerProcess.run(["export", "--data", data, "--device", chat.deviceId, "--chat", chat.chatId!])
        let chatValues = events.filter { $0.2.deviceId == chat.deviceId && $0.2.chatId == chat.chatId }.map(\.1)
        #expect(oneChat.standardOutput.split(separator: "\n").map { Array($0.utf8) } == chatValues)
    }

    @Test("export --with-position of one chat is that chat's events as produced, in order, byte for byte, with coordinates")
    func exportOneChat() throws {
        let (data, events) = try Self.makeData()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let chat = try #require(events.first { $0.2.chatId != nil && $0.2.chatId != "status@broadcast" }?.2)
        let run = try ChatLedgerProcess.run(["export", "--data", data, "--device", chat.deviceId, "--chat", chat.chatId!, "--with-position"])
        #expect(run.status == 0)
        let lines = run.standardOutput.split(separator: "\n")
        let expected = events.filter { $0.2.deviceId == chat.deviceId && $0.2.chatId == chat.chatId }
        #expect(lines.count == expected.count)
        for (line, (position, value, _)) in zip(lines, expected) {
            let prefix = #"{"partition":\#(position.partition),"offset":\#(position.offset),"timestamp":"#
            #expect(line.hasPrefix(prefix))
            let raw = line[line.range(of: #""event":"#)!.upperBound...].dropLast()
            #expect(Array(raw.utf8) == value, "the event exactly as received")
        }
    }

    @Test("export filters by occurredAt range")
    func exportTimeRange() throws {
        let (data, events) = try Self.makeData()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let times = events.map(\.2.occurredAt).sorted()
        let (from, to) = (times[500], times[800])
        let run = try ChatLedgerProcess.run(["export", "--data", data, "--from", String(from), "--to", String(to)])
        #expect(run.status == 0)
        #expect(run.standardOutput.split(separator: "\n").count == events.filter { $0.2.occurredAt >= from && $0.2.occurredAt <= to }.count)
        #expect(try ChatLedgerProcess.run(["export", "--data", data, "--from", "yesterday"]).status == 64)
    }

    @Test("replay and export on a data directory that does not exist: a clear error and exit 1, not an empty answer")
    func missingDataDirectory() throws {
        for arguments in [["replay", "--device", "d1"], ["export"]] {
            let run = try ChatLedgerProcess.run(arguments + ["--data", "/nonexistent/chatledger"])
            #expect(run.status == 1, "\(arguments[0])")
            #expect(run.standardError.contains("chatledger \(arguments[0]): no data directory at /nonexistent/chatledger"))
            #expect(run.standardOutput.isEmpty, "\(arguments[0])")
        }
    }

    @Test("replay --at-offset prints exactly the chat list a fold up to that position renders, before and after the checkpoint")
    func replayAtOffset() throws {
        let (data, events) = try Self.makeData()
        defer { try? FileManager.default.removeItem(atPath: data) }
        for index in [10, 700, 1_499, 1_500, 2_200, 2_999] {
            let (position, _, event) = events[index]
            var reference = ProjectionState()
            for (at, _, earlier) in events[...index] where at.partition == position.partition { reference.apply(earlier, at: at) }
            let expected = try ChatListRenderer.chatList(
                reference.devices[event.deviceId], deviceId: event.deviceId, query: ChatListQuery(), now: 1_000)
            let run = try ChatLedgerProcess.run([
                "replay", "--data", data, "--device", event.deviceId, "--at-offset", position.description, "--now", "1000",
            ])
            #expect(run.status == 0, "\(run.standardError)")
            #expect(run.standardOutput == String(decoding: expected.bytes, as: UTF8.self) + "\n", "at \(position)")
        }
    }

    @Test("replay pages a chat list as the API does: --limit, then --cursor set to the page's nextCursor, until the whole list; a cursor that is none is a usage error")
    func replayPages() throws {
        let (data, events) = try Self.makeData()
        defer { try? FileManager.default.removeItem(atPath: data) }
        var reference = ProjectionState()
        for (at, _, event) in events { reference.apply(event, at: at) }
        let (deviceId, device) = try #require(reference.devices.max { $0.value.chats.count < $1.value.chats.count })
        try #require(device.chats.count > 2, "a device with more chats than one page")
        let whole = try ChatListRenderer.chatList(device, deviceId: deviceId, query: ChatListQuery(limit: 500), now: 1_000)
        let expected = try #require(try JSONSerialization.jsonObject(with: Data(whole.bytes)) as? [String: Any])["chats"] as? [[String: Any]]
        var paged: [String] = []
        var cursor: String?
        repeat {
            let run = try ChatLedgerProcess.run(
                ["replay", "--data", data, "--device", deviceId, "--limit", "2", "--now", "1000"] + (cursor.map { ["--cursor", $0] } ?? []))
            #expect(run.status == 0, "\(run.standardError)")
            let page = try #require(try JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8)) as? [String: Any])
            paged += (page["chats"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            cursor = page["nextCursor"] as? String
        } while cursor != nil && paged.count <= device.chats.count
        #expect(paged == expected?.compactMap { $0["id"] as? String }, "the pages make the whole list, in order")
        let bad = try ChatLedgerProcess.run(["replay", "--data", data, "--device", deviceId, "--cursor", "not-a-cursor"])
        #expect(bad.status == 64, "\(bad.standardError)")
    }

    @Test(
        "replay --at-offset a position the log does not hold (no such partition, past the partition's last record, not the device's partition): exit 1, a message on stderr, nothing on stdout"
    )
    func replayAtOffsetOutsideTheLog() throws {
        let (data, events) = try Self.makeData()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let (position, _, event) = try #require(events.first { $0.0.partition == 0 })
        let last = try #require(events.last { $0.0.partition == 0 }?.0.offset)
        let lastOfOne = try #require(events.last { $0.0.partition == 1 }?.0.offset)
        let elsewhere = "device \(event.deviceId) has no records on partition 1 (its events are on partition 0)"
        let cases: [(String, String)] = [
            ("99:1", "has no partition 99"),
            ("0:\(last + 1)", "partition 0 of the log ends at offset \(last): offset \(last + 1) is beyond it"),
            ("0:99999", "offset 99999 is beyond it"),
            ("1:\(position.offset + 5)", elsewhere),
            // After the checkpoint, whose state holds every partition's devices.
            ("1:\(lastOfOne)", elsewhere),
        ]
        for (at, message) in cases {
            let run = try ChatLedgerProcess.run(["replay", "--data", data, "--device", event.deviceId, "--at-offset", at])
            #expect(run.status == 1, "--at-offset \(at)")
            #expect(run.standardError.contains("chatledger replay: ") && run.standardError.contains(message), "\(at): \(run.standardError)")
            #expect(run.standardOutput.isEmpty, "--at-offset \(at)")
        }
        let atLast = try ChatLedgerProcess.run(["replay", "--data", data, "--device", event.deviceId, "--at-offset", "0:\(last)"])
        #expect(atLast.status == 0, "the partition's last record is a point of its history: \(atLast.standardError)")
        // A device of partition 0 whose first event comes later: 0:0 is before it, an empty list, no error.
        let later = try #require(events.first { $0.0.partition == 0 && $0.2.deviceId != event.deviceId }?.2.deviceId)
        let before = try ChatLedgerProcess.run(["replay", "--data", data, "--device", later, "--at-offset", "0:0"])
        #expect(before.status == 0, "\(before.standardError)")
        #expect(before.standardOutput.contains(#""chats":[]"#), "\(before.standardOutput)")
    }

    @Test("verify checks every checkpoint against a replay of the log, and finds one that disagrees")
    func verifyCheckpoints() throws {
        let (data, events) = try Self.makeData()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let clean = try ChatLedgerProcess.run(["verify", "--data", data])
        #expect(clean.status == 0, "\(clean.standardOutput)")
        #expect(clean.standardOutput.contains("checkpoints verified against a replay of the log: 1"))

        // A checkpoint whose state was not produced by this log (one event too many).
        var forged = ProjectionState()
        for (position, _, event) in events.prefix(100) { forged.apply(event, at: position) }
        forged.apply(Event(eventId: "forged", deviceId: "dev-1", occurredAt: 1, chatId: "x@c.us", payload: .chatMarkedUnread),
                     at: events[99].0)
        try CheckpointStore(dataDirectory: data).write(forged, topic: "wa.device-events")
        let tampered = try ChatLedgerProcess.run(["verify", "--data", data])
        #expect(tampered.status == 1)
        #expect(tampered.standardOutput.contains("problem: "))
        #expect(tampered.standardOutput.contains(".ckpt"))

        // --json: one entry per checkpoint saying whether it holds, where and with what digest.
        let summary = try ChatLedgerProcess.run(["verify", "--data", data, "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(summary.standardOutput.utf8)) as? [String: Any])
        let checkpoints = try #require(object["checkpoints"] as? [[String: Any]])
        #expect(checkpoints.count == 2)
        #expect(checkpoints.map { $0["holds"] as? Bool } == [true, false], "the original holds, the forged one is located")
        #expect((checkpoints.last?["problems"] as? Int ?? 0) > 0)
        #expect((checkpoints.last?["positions"] as? [String: Int])?.isEmpty == false)
        #expect(object["checkpointsVerified"] as? Int == 1)
    }

    @Test("attested checkpoints verify under their key; a wrong key, an altered or a missing attestation is a problem")
    func attestation() throws {
        let (data, _) = try Self.makeData()
        defer { try? FileManager.default.removeItem(atPath: data) }
        try FileManager.default.removeItem(atPath: data + "/checkpoints")  // only attested ones from here
        let keyFile = data + ".key"
        let otherKeyFile = data + ".other-key"
        defer {
            try? FileManager.default.removeItem(atPath: keyFile)
            try? FileManager.default.removeItem(atPath: otherKeyFile)
        }
        try Data("correct horse battery staple\n".utf8).write(to: URL(fileURLWithPath: keyFile))
        try Data("another key".utf8).write(to: URL(fileURLWithPath: otherKeyFile))
        // The state as a replay of the log makes it, so the checkpoint matches the log.
        let log = EventLog(dataDirectory: data)
        var fromLog = ProjectionState()
        try ProjectionRecovery.replay(into: &fromLog, log: log, topic: "wa.device-events")
        let store = CheckpointStore(dataDirectory: data, attestationKey: Array("correct horse battery staple".utf8))
        let info = try store.write(fromLog, topic: "wa.device-events")

        let good = try ChatLedgerProcess.run(["verify", "--data", data, "--attest-key", keyFile])
        #expect(good.status == 0, "\(good.standardOutput)")
        let wrongKey = try ChatLedgerProcess.run(["verify", "--data", data, "--attest-key", otherKeyFile])
        #expect(wrongKey.status == 1)
        #expect(wrongKey.standardOutput.contains("attestation"))

        let attestation = String(info.path.dropLast(5)) + ".attest"
        var text = try String(contentsOfFile: attestation, encoding: .utf8)
        text = (text.first == "0" ? "1" : "0") + text.dropFirst()
        try text.write(toFile: attestation, atomically: true, encoding: .utf8)
        #expect(try ChatLedgerProcess.run(["verify", "--data", data, "--attest-key", keyFile]).status == 1)
        try FileManager.default.removeItem(atPath: attestation)
        #expect(try ChatLedgerProcess.run(["verify", "--data", data, "--attest-key", keyFile]).status == 1)
        #expect(try ChatLedgerProcess.run(["verify", "--data", data]).status == 0, "without a key, attestations are not required")
    }
}
