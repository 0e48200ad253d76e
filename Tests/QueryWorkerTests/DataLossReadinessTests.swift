import ChatProjection
import EventLog
import Foundation
import QueryWorker
import Testing

@Suite("/readyz says data was lost until an operator acknowledges it")
struct DataLossReadinessTests {
    @Test("an unacknowledged gap makes /readyz 503 'data lost' and /api/v1/status 'data lost', not ready, with each range, even when caught up; acknowledged, both are ready again")
    func dataLost() throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("readyz-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: data) }
        let gaps = GapRegister(topic: "wa.device-events", dataDirectory: data)
        let api = QueryAPI(store: ProjectionStore(), keys: KeyRing(try APIKeys(json: Array(QueryAPITests.keysJSON.utf8))), isReady: { true }, gaps: gaps)
        let test = QueryAPITests()
        #expect(test.get(api, "/readyz", key: nil).status == 200)
        #expect(try test.json(test.get(api, "/api/v1/status"))["status"] as? String == "ready")

        gaps.add(LogGap(topic: "wa.device-events", partition: 3, firstLostOffset: 100, lastLostOffset: 1_043, brokerLogStartOffset: 1_044,
                        detectedAt: 1_800_000_000_000, reason: "offset_out_of_range: test"))
        let lost = test.get(api, "/readyz", key: nil)
        #expect(lost.status == 503)
        let body = try test.json(lost)
        #expect(body["status"] as? String == "data lost")
        let ranges = try #require(body["lost"] as? [[String: Any]])
        #expect(ranges.count == 1)
        #expect(ranges.first?["partition"] as? Int == 3 && ranges.first?["firstOffset"] as? Int == 100
                && ranges.first?["lastOffset"] as? Int == 1_043 && ranges.first?["records"] as? Int == 944)

        let status = try test.json(test.get(api, "/api/v1/status"))
        #expect(status["status"] as? String == "data lost" && status["ready"] as? Bool == false)
        #expect((status["lost"] as? [[String: Any]])?.first?["lastOffset"] as? Int == 1_043)

        try gaps.acknowledgeAll(note: "seen")
        #expect(test.get(api, "/readyz", key: nil).status == 200)
        let acknowledged = try test.json(test.get(api, "/api/v1/status"))
        #expect(acknowledged["status"] as? String == "ready" && acknowledged["lost"] == nil)
    }
}
