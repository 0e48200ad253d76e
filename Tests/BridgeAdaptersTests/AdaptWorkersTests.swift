@testable import BridgeAdapters
import ChatEvents
import Testing

@Suite("Adapting a poll's records on several threads")
struct AdaptWorkersTests {
    /// 2,000 simulated Evolution records with hostile ones among them, as one poll returns them.
    static func batch() -> [BridgeRecord] {
        var traffic = EvolutionTraffic(.init(instances: 4, chatsPerInstance: 10, seed: 7))
        var records: [BridgeRecord] = []
        for offset in 0..<2_000 {
            let record = traffic.next()
            var value: [UInt8]? = record.value
            if offset % 97 == 0 { value = Array("not json {".utf8) }
            if offset % 211 == 0 { value = nil }
            records.append(BridgeRecord(
                topic: record.topic, partition: Int32(offset % 3), offset: Int64(offset), timestamp: record.timestamp, key: record.key, value: value))
        }
        return records
    }

    @Test("three threads give exactly the entries the stage's thread alone gives, in the records' order")
    func sameEntriesInOrder() {
        let records = Self.batch()
        let alone = AdaptWorkers(adapter: EvolutionAdapter(), threads: 1).prepare(records)
        let workers = AdaptWorkers(adapter: EvolutionAdapter(), threads: 3)
        // Twice: the helpers take a second batch after the first.
        for _ in 0..<2 {
            let shared = workers.prepare(records)
            #expect(shared.count == records.count)
            #expect(shared.map(\.record) == alone.map(\.record), "each entry stays at its record's place")
            #expect(shared.map(\.events) == alone.map(\.events), "the same events with the same ids and bytes")
            #expect(shared.map(\.outcome) == alone.map(\.outcome))
            #expect(shared.map(\.time) == alone.map(\.time))
        }
        #expect(alone.contains { $0.outcome != .mapped }, "the hostile records are among them")
        #expect(alone.reduce(0) { $0 + $1.events.count } > 1_000, "and plenty of events")
    }

    @Test("a batch of five records (live traffic) gives the entries the stage's thread alone gives")
    func smallBatch() {
        let records = Array(Self.batch().prefix(5))
        let alone = AdaptWorkers(adapter: EvolutionAdapter(), threads: 1).prepare(records)
        let shared = AdaptWorkers(adapter: EvolutionAdapter(), threads: 2).prepare(records)
        #expect(shared.map(\.events) == alone.map(\.events))
        #expect(shared.map(\.record) == alone.map(\.record))
    }

    @Test("batches started one after another while the caller does other work come out whole and in order: each start hands over the batch before")
    func overlappingBatches() {
        let records = Self.batch()
        let alone = AdaptWorkers(adapter: EvolutionAdapter(), threads: 1).prepare(records)
        let workers = AdaptWorkers(adapter: EvolutionAdapter(), threads: 2)
        // Three polls of different sizes, the middle one too small for the helpers.
        let polls = [Array(records[0..<900]), Array(records[900..<950]), Array(records[950...])]
        var entries: [RecordMerger.Entry] = []
        var startedBefore = 0
        for poll in polls {
            workers.start(poll.map { .record($0) }, finishing: { entries.append($0) })
            if poll.count > 2 * AdaptWorkers.chunkSize {
                #expect(workers.isBusy, "the batch is left in flight")
                #expect(entries.count == startedBefore, "exactly the batches before it are out")
            } else {
                #expect(!workers.isBusy, "a small batch is done at once")
                #expect(entries.count == startedBefore + poll.count, "the batches before it, then itself")
            }
            startedBefore += poll.count
        }
        workers.finish { entries.append($0) }
        #expect(!workers.isBusy)
        #expect(entries.map(\.record) == alone.map(\.record), "every record once, in order")
        #expect(entries.map(\.events) == alone.map(\.events), "the same events with the same ids and bytes")
    }

    @Test("adapting everything at once (a rebalance, a stop) while a batch is in flight hands over that batch first, then the new records: none lost")
    func prepareFinishesTheBatchInFlight() {
        let records = Self.batch()
        let alone = AdaptWorkers(adapter: EvolutionAdapter(), threads: 1).prepare(records)
        let workers = AdaptWorkers(adapter: EvolutionAdapter(), threads: 2)
        var entries: [RecordMerger.Entry] = []
        workers.start(records[0..<1_500].map { .record($0) }, finishing: { entries.append($0) })
        workers.prepare(records[1_500...].map { .record($0) }) { entries.append($0) }
        #expect(!workers.isBusy)
        #expect(entries.count == records.count, "none dropped")
        #expect(entries.map(\.record.offset) == alone.map(\.record.offset), "the batch in flight, then the new records, each once")
    }
}
