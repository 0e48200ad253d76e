import ChatEvents
import ChatProjection
import EventLog
import Foundation
import KafkaTestSupport
import LedgerSupport
import QueryWorker
import Testing

/// The query and path rules the API document states, pinned where schemathesis found the
/// code and `schemas/openapi.yaml` apart.
@Suite("QueryAPI: parameters exactly as documented")
struct QueryParametersTests {
    var test = QueryAPITests()

    init() {
        test.incoming("dev-1", "c1", "m1")
    }

    func api(partitions: [Int32: Int64] = [:]) throws -> QueryAPI {
        QueryAPI(
            store: test.store, keys: KeyRing(try APIKeys(json: Array(QueryAPITests.keysJSON.utf8))),
            source: { SourceStatus(kind: .kafka, endOffsets: partitions) }, clock: { 0 })
    }

    @Test("an empty parameter is the parameter left out (cursor=, from=, asOf= as a form sends them)")
    func emptyIsAbsent() throws {
        let api = try api()
        #expect(test.get(api, "/api/v1/devices?cursor=").status == 200)
        #expect(test.get(api, "/api/v1/devices/dev-1/chats?cursor=&filter=&asOf=&wait=0").status == 200)
        #expect(test.get(api, "/api/v1/devices/dev-1/events?chat=&from=&to=").status == 501)  // no log here: past the parameters
    }

    @Test("asOf combines with minPosition and wait: the replay waits for the position")
    func asOfWithMinPosition() throws {
        let api = try api()
        // No log behind this API: 501 shows the parameters were accepted and asOf was reached.
        #expect(test.get(api, "/api/v1/devices/dev-1/chats?asOf=2030-01-01T00:00:00Z&minPosition=0:0&wait=10").status == 501)
        #expect(test.get(api, "/api/v1/devices/dev-1/chats?asOf=2030-01-01T00:00:00Z&minPosition=0:5").status == 503)
    }

    @Test("a deviceId over 128 characters or a chatId over 256 is 400, as the document says")
    func overlongIdentifiers() throws {
        let api = try api()
        let device = String(repeating: "d", count: 129)
        #expect(test.get(api, "/api/v1/devices/\(device)/unread").status == 400)
        #expect(test.get(api, "/api/v1/devices/\(String(repeating: "d", count: 128))/unread").status == 200)
        #expect(test.get(api, "/api/v1/devices/dev-1/chats/\(String(repeating: "c", count: 257))").status == 400)
        #expect(test.get(api, "/api/v1/devices/dev-1/chats/\(String(repeating: "c", count: 257))/read", method: "POST").status == 400)
    }

    @Test("minPosition is 1-9 digits : 1-18 digits; a partition the topic lacks is 400 at once")
    func minPositionGrammar() throws {
        let api = try api(partitions: [0: 10, 1: 0])
        #expect(test.get(api, "/api/v1/devices/dev-1/unread?minPosition=0:999999999999999999").status == 503)
        #expect(test.get(api, "/api/v1/devices/dev-1/unread?minPosition=0:9999999999999999999").status == 400)
        #expect(test.get(api, "/api/v1/devices/dev-1/unread?minPosition=1234567890:0").status == 400)
        #expect(test.get(api, "/api/v1/devices/dev-1/unread?minPosition=%2B0:0").status == 400)
        let unknown = test.get(api, "/api/v1/devices/dev-1/unread?minPosition=7:0&wait=30000")
        #expect(unknown.status == 400)
        #expect(String(decoding: unknown.body, as: UTF8.self).contains("unknown_partition"))
        // Partitions not listed yet (no statistics so far): every partition may still come.
        #expect(test.get(try self.api(), "/api/v1/devices/dev-1/unread?minPosition=7:0").status == 503)
    }
}
