import ChatEvents
import ChatProjection
import EventLog
import LedgerSupport
import Synchronization
import Testing

@Suite("Snapshot freshness under concurrency")
struct ConcurrencyStressTests {
    @Test("one writer applies events while six readers query the same devices: no reader ever gets a snapshot older than the version applied before its read began")
    func readersNeverSeeStaleSnapshots() throws {
        let store = ProjectionStore(cacheBytes: 4 << 20)
        var model = TrafficModel(.init(devices: 3, chatsPerDevice: 12, seed: 77))
        let events = (0..<60_000).map { _ in model.next().event }
        let deviceIds = Array(Set(events.map(\.deviceId))).sorted()
        let applied = Mutex<[String: UInt64]>([:])
        let finished = Atomic<Bool>(false)
        let reads = Atomic<Int>(0)
        let staleReads = Atomic<Int>(0)
        let queries = [ChatListQuery(limit: 5), ChatListQuery(filter: .unread, limit: 50), ChatListQuery(limit: 500)]

        let readers = (0..<6).map { readerIndex in
            LedgerThread {
                var random = SeededGenerator(seed: UInt64(readerIndex))
                while !finished.load(ordering: .acquiring) {
                    let device = deviceIds[Int(random.next() % UInt64(deviceIds.count))]
                    // The version this reader knows was applied before its read begins.
                    let known = applied.withLock { $0[device] ?? 0 }
                    let query = queries[Int(random.next() % UInt64(queries.count))]
                    guard let view = try? store.chatList(device, query: query, now: 0) else { continue }
                    if view.version < known { staleReads.add(1, ordering: .relaxed) }
                    let unread = store.unread(device, now: 0)
                    if unread.version < known { staleReads.add(1, ordering: .relaxed) }
                    reads.add(2, ordering: .relaxed)
                }
            }
        }
        for reader in readers { reader.start() }
        for (index, event) in events.enumerated() {
            if case .applied(let version) = store.apply(event, at: LogPosition(partition: 0, offset: Int64(index))) {
                applied.withLock { $0[event.deviceId] = version }
            }
        }
        finished.store(true, ordering: .releasing)
        for reader in readers { reader.join() }

        #expect(staleReads.load(ordering: .relaxed) == 0)
        #expect(reads.load(ordering: .relaxed) > 10_000, "the readers raced the writer for real")
        let counters = store.cacheCounters
        #expect(counters.hits > 0)
        #expect(counters.invalidations > 0)
    }
}
