#if canImport(Glibc)
import Glibc
#endif
import ChatEvents
import ChatProjection
import EventLog
import Foundation

/// `bench projection`: events applied per second, memory per chat at 1,000,000 chats,
/// chat-list render time and cache-hit read time.
enum ProjectionBenchmark {
    static func run(events count: Int) throws -> BenchReport {
        var report = BenchReport(bench: "projection")

        // Apply rate over simulated traffic (pre-parsed: the fold alone).
        var model = TrafficModel(.init(devices: 1_000, chatsPerDevice: 100, seed: 3))
        let events = (0..<count).map { _ in model.next().event }
        var state = ProjectionState()
        let applySeconds = measureSeconds {
            for (index, event) in events.enumerated() { state.apply(event, at: LogPosition(partition: 0, offset: Int64(index))) }
        }
        report.add("apply_events_per_s", Double(events.count) / applySeconds, "events/s")

        // Memory: 10,000 devices x 100 chats, each with a last message and one unread
        // message, measured as resident memory before and after in this process.
        let before = residentBytes()
        var large = ProjectionState(eventIdWindow: 1)
        var offset: Int64 = 0
        for device in 0..<10_000 {
            let deviceId = "dev-\(device)"
            for chat in 0..<100 {
                let event = Event(
                    eventId: "e", deviceId: deviceId, occurredAt: 1_767_225_600_000 + offset,
                    chatId: "49170\(1_000_000 + device * 100 + chat)@c.us",
                    payload: .messageCreated(MessageCreated(
                        messageId: "3EB0\(String(UInt64(offset) &* 0x9E37_79B9_7F4A_7C15, radix: 16).prefix(16))",
                        fromMe: false, kind: .text, preview: "see you at 8, ok?")))
                var unique = event
                unique.eventId = String(offset)
                large.apply(unique, at: LogPosition(partition: 0, offset: offset))
                offset += 1
            }
        }
        let after = residentBytes()
        let chats = large.devices.values.reduce(0) { $0 + $1.chats.count }
        report.add("memory_bytes_per_chat", Double(after - before) / Double(chats), "bytes")
        report.add("chats", Double(chats), "chats")
        withExtendedLifetime(large) {}
        let windowBefore = residentBytes()
        var window = EventIdWindow(capacity: 1_000_000)
        for id in 0..<1_000_000 { _ = window.insert("01KDVE3RZGGBE2Q0VY7\(id)") }
        report.add("dedupe_window_bytes_per_event_id", Double(residentBytes() - windowBefore) / 1e6, "bytes")
        withExtendedLifetime(window) {}
        report.add("chat_entry_inline_bytes", Double(ChatTable.entryStride), "bytes")

        // Render and cache hit for a 50-chat list.
        let store = ProjectionStore(state)
        let deviceId = state.devices.max { $0.value.chats.count < $1.value.chats.count }?.key ?? "dev-1"
        let query = ChatListQuery(limit: 50)
        let device = store.device(deviceId)
        var renderedBytes = 0
        let renders = 20_000
        let renderSeconds = try measureSeconds {
            for _ in 0..<renders {
                renderedBytes = try ChatListRenderer.chatList(device, deviceId: deviceId, query: query, now: 0).bytes.count
            }
        }
        report.add("render_chat_list_50_microseconds", renderSeconds / Double(renders) * 1e6, "µs")
        report.add("render_chat_list_50_bytes", Double(renderedBytes), "bytes")
        _ = try store.chatList(deviceId, query: query, now: 0)
        let hits = 1_000_000
        let hitSeconds = try measureSeconds {
            for _ in 0..<hits { renderedBytes &+= try store.chatList(deviceId, query: query, now: 0).bytes.count }
        }
        report.add("cache_hit_read_nanoseconds", hitSeconds / Double(hits) * 1e9, "ns")
        report.notes.append("apply: \(events.count) simulated events over 1000 devices x 100 chats; memory: resident set growth for 10,000 devices x 100 chats")
        report.notes.append("device with \(device?.chats.count ?? 0) chats rendered; cache: \(store.cacheCounters.hits) hits")
        return report
    }

    /// Resident memory of this process (from /proc/self/statm).
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
