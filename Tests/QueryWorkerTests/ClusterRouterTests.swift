import ChatEvents
import ChatProjection
import EventLog
import Foundation
import KafkaTestSupport
import QueryWorker
import Synchronization
import Testing

@Suite("cluster mode: the partitioner, the ownership table and the router's decisions")
struct ClusterRouterTests {
    @Test("murmur2 gives Kafka's own test vectors (the Java client's UtilsTest), so devices land where Kafka's default partitioner puts them")
    func murmur2Vectors() {
        let vectors: [(String, Int32)] = [
            ("21", -973_932_308), ("foobar", -790_332_482), ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829), ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            ("abc", 479_470_107),
        ]
        for (text, expected) in vectors {
            #expect(Int32(bitPattern: DevicePartitioner.murmur2(Array(text.utf8))) == expected, "\(text)")
        }
        #expect(DevicePartitioner.partition(of: "abc", partitions: 12) == Int32(479_470_107 % 12))
    }

    static func record(_ partition: Int32, _ instance: String, _ state: MembershipRecord.State, incarnation: String = "1") -> MembershipRecord {
        MembershipRecord(partition: partition, instance: instance, incarnation: incarnation, state: state, partitions: 4, at: 0)
    }

    @Test("ownership: owned replaces, ready and released count only from the current owner (a late word from an earlier owner changes nothing)")
    func ownershipFold() {
        let table = ClusterOwnership()
        #expect(table.partitionCount == nil)
        table.apply(Self.record(1, "http://a:1", .owned))
        #expect(table.owner(of: 1)?.instance == "http://a:1" && table.owner(of: 1)?.ready == false)
        table.apply(Self.record(1, "http://a:1", .ready))
        #expect(table.owner(of: 1)?.ready == true)
        table.apply(Self.record(1, "http://b:1", .owned))
        #expect(table.owner(of: 1) == .init(instance: "http://b:1", incarnation: "1", ready: false))
        table.apply(Self.record(1, "http://a:1", .ready))
        table.apply(Self.record(1, "http://a:1", .released))
        #expect(table.owner(of: 1) == .init(instance: "http://b:1", incarnation: "1", ready: false), "the earlier owner's late words")
        table.apply(Self.record(1, "http://b:1", .ready, incarnation: "2"))
        #expect(table.owner(of: 1)?.ready == false, "another run of b at the same URL is not the owner")
        table.apply(Self.record(1, "http://b:1", .ready))
        #expect(table.owner(of: 1)?.ready == true)
        table.apply(Self.record(1, "http://b:1", .released))
        #expect(table.owner(of: 1) == nil)
        #expect(table.partitionCount == 4)
        #expect(MembershipRecord(decoding: Self.record(3, "http://c:2", .ready).encoded()) == Self.record(3, "http://c:2", .ready))
        #expect(MembershipRecord(decoding: Array("{\"partition\":5,\"instance\":\"x\",\"incarnation\":\"1\",\"state\":\"owned\",\"partitions\":4,\"at\":0}".utf8)) == nil,
                "a partition beyond the count is not a membership record")
        #expect(MembershipRecord(decoding: Array("not json".utf8)) == nil)
        // A record names its writer's consumer group: one cluster per group. A record of an
        // older build names none and counts for every group.
        let grouped = MembershipRecord(partition: 1, instance: "http://d:1", incarnation: "9", state: .owned, partitions: 4, at: 0, group: "g1")
        #expect(MembershipRecord(decoding: grouped.encoded()) == grouped)
        #expect(grouped.belongs(to: "g1") && !grouped.belongs(to: "g2"))
        var otherGroup = grouped
        otherGroup.group = "g2"
        #expect(grouped.key == Array("g1/partition/1".utf8) && otherGroup.key != grouped.key, "compaction keeps each group's last fact")
        let legacy = MembershipRecord(decoding: Array("{\"partition\":1,\"instance\":\"x\",\"incarnation\":\"1\",\"state\":\"owned\",\"partitions\":4,\"at\":0}".utf8))
        #expect(legacy?.group == nil && legacy?.belongs(to: "g2") == true)
    }

    static func head(_ target: String, _ headers: [String] = [], method: String = "GET", body: String = "") throws -> HTTPRequestHead {
        let text = "\(method) \(target) HTTP/1.1\r\nHost: x\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n" + body
        guard case .request(let head, _, _) = HTTPRequestParser().parse(Array(text.utf8)) else { throw Failure() }
        return head
    }

    struct Failure: Error {}

    /// The response a reply ends in, waiting for a forward (`pending`) if it is one.
    static func settle(_ reply: HTTPServer.Reply) -> HTTPResponse? {
        switch reply {
        case .response(let response): return response
        case .pending(_, _, let start):
            let result = Mutex<HTTPServer.Reply?>(nil)
            let done = DispatchSemaphore(value: 0)
            start { next in
                result.withLock { $0 = next }
                done.signal()
            }
            guard done.wait(timeout: .now() + 10) == .success, let next = result.withLock({ $0 }) else { return nil }
            return settle(next)
        default: return nil
        }
    }

    static func text(_ response: HTTPResponse?) -> String { String(decoding: response?.body ?? [], as: UTF8.self) }

    static func header(_ response: HTTPResponse?, _ name: String) -> String? {
        response?.headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// A device whose partition (of 4) is `partition`.
    static func device(in partition: Int32) -> String {
        (0...).lazy.map { "dev-\($0)" }.first { DevicePartitioner.partition(of: $0, partitions: 4) == partition }!
    }

    @Test("the router answers here only for a partition this run owns and has caught up; otherwise 503 with Retry-After, and a forwarded request is never forwarded again")
    func decisions() throws {
        let table = ClusterOwnership()
        let router = ClusterRouter(ownership: table, identity: .init(url: "http://self:1", incarnation: "me"), forwardingThreads: 1)
        defer { router.stop() }
        let localCalls = Atomic<Int>(0)
        let local: () -> HTTPServer.Reply = {
            localCalls.add(1, ordering: .relaxed)
            return .response(HTTPResponse(status: 200, body: Array("here".utf8)))
        }
        let path = "/api/v1/devices/\(Self.device(in: 0))/chats"
        func ask(_ target: String, _ headers: [String] = []) throws -> HTTPResponse? { Self.settle(router.reply(try Self.head(target, headers), [], local: local)) }

        let unknown = try ask(path)
        #expect(unknown?.status == 503 && Self.header(unknown, "Retry-After") == "1")
        #expect(Self.text(unknown).contains("cluster_membership_unknown"))
        #expect(try ask("/api/v1/status")?.status == 200, "routes not under a device are this instance's")
        #expect(Self.header(try ask("/healthz"), "X-Ledger-Instance") == "http://self:1")

        table.apply(MembershipRecord(partition: 0, instance: "http://self:1", incarnation: "me", state: .owned, partitions: 4, at: 0))
        let calls = localCalls.load(ordering: .relaxed)
        #expect(try ask(path)?.status == 503, "owned here, still catching up")
        #expect(localCalls.load(ordering: .relaxed) == calls)
        table.apply(MembershipRecord(partition: 0, instance: "http://self:1", incarnation: "me", state: .ready, partitions: 4, at: 0))
        let here = try ask(path)
        #expect(here?.status == 200 && Self.header(here, "X-Ledger-Instance") == "http://self:1")
        #expect(try ask(path, ["X-Ledger-Forwarded: http://other:1"])?.status == 200, "a forwarded request for a partition owned here is answered")

        table.apply(MembershipRecord(partition: 0, instance: "http://self:1", incarnation: "an earlier run", state: .owned, partitions: 4, at: 0))
        table.apply(MembershipRecord(partition: 0, instance: "http://self:1", incarnation: "an earlier run", state: .ready, partitions: 4, at: 0))
        let earlier = try ask(path, ["X-Ledger-Forwarded: http://other:1"])
        #expect(earlier?.status == 503, "an earlier run at this URL owns it: not this one")
        #expect(Self.text(earlier).contains("partition_moving"))

        table.apply(MembershipRecord(partition: 0, instance: "http://127.0.0.1:1", incarnation: "x", state: .owned, partitions: 4, at: 0))
        let catching = try ask(path)
        #expect(catching?.status == 503 && Self.text(catching).contains("partition_catching_up"))
        table.apply(MembershipRecord(partition: 0, instance: "http://127.0.0.1:1", incarnation: "x", state: .ready, partitions: 4, at: 0))
        let unreachable = try ask(path)
        #expect(unreachable?.status == 503 && Self.header(unreachable, "Retry-After") == "1")
        #expect(Self.text(unreachable).contains("owner_unreachable"))
        #expect(try ask(path, ["X-Ledger-Forwarded: http://other:1"])?.status == 503, "never forwarded twice")
        table.apply(MembershipRecord(partition: 0, instance: "http://127.0.0.1:1", incarnation: "x", state: .released, partitions: 4, at: 0))
        #expect(Self.text(try ask(path)).contains("partition_unowned"))
        #expect(localCalls.load(ordering: .relaxed) == calls + 2)
    }

    @Test("the device list shows only the devices of partitions this run owns: one another instance took over stays in the projection here, unlisted (an erasure applied by its owner would not show in it)")
    func deviceListOwnedPartitionsOnly() throws {
        let table = ClusterOwnership()
        let router = ClusterRouter(ownership: table, identity: .init(url: "http://self:1", incarnation: "me"), forwardingThreads: 1)
        defer { router.stop() }
        #expect(router.ownedPartitions == nil, "the partition count is not known yet")
        let store = ProjectionStore()
        let (mine, theirs) = (Self.device(in: 0), Self.device(in: 1))
        for (index, (device, partition)) in [(mine, Int32(0)), (theirs, Int32(1))].enumerated() {
            store.apply(
                Event(eventId: "E\(index)", deviceId: device, occurredAt: 1, chatId: "a@c.us",
                      payload: .messageCreated(MessageCreated(messageId: "M\(index)", fromMe: false, kind: .text, preview: "hi"))),
                at: LogPosition(partition: partition, offset: 0))
        }
        for (partition, instance, incarnation) in [(Int32(0), "http://self:1", "me"), (1, "http://other:1", "x")] {
            for state in [MembershipRecord.State.owned, .ready] {
                table.apply(MembershipRecord(partition: partition, instance: instance, incarnation: incarnation, state: state, partitions: 4, at: 0))
            }
        }
        #expect(router.ownedPartitions == [0])
        let api = QueryAPI(
            store: store, keys: KeyRing(try APIKeys(json: Array(#"{"keys":[{"key":"k-123","devices":["*"],"role":"reader"}]}"#.utf8))),
            cluster: router)
        let listed = Self.text(Self.settle(api.reply(try Self.head("/api/v1/devices", ["x-api-key: k-123"]), [])))
        #expect(listed.contains(mine) && !listed.contains(theirs), "\(listed)")
    }

    @Test("a forward reaches the owner marked X-Ledger-Forwarded, with the client's headers and body, and its answer comes back unchanged (status, body, ETag, position)")
    func forwardsToTheOwner() throws {
        let seen = Mutex<[HTTPRequestHead]>([])
        var configuration = HTTPServer.Configuration()
        configuration.port = 0
        let owner = HTTPServer(configuration: configuration) { head, body in
            seen.withLock { $0.append(head) }
            return .response(HTTPResponse(
                status: 202, headers: [("ETag", "\"7\""), ("X-Ledger-Position", "1:41"), ("X-Ledger-Instance", "http://owner")],
                body: Array("got \(body.count) bytes".utf8)))
        }
        let port = try owner.start()
        defer { owner.stop() }
        let table = ClusterOwnership()
        let router = ClusterRouter(ownership: table, identity: .init(url: "http://self:1", incarnation: "me"), forwardingThreads: 2)
        defer { router.stop() }
        table.apply(MembershipRecord(partition: 2, instance: "http://127.0.0.1:\(port)", incarnation: "o", state: .owned, partitions: 4, at: 0))
        table.apply(MembershipRecord(partition: 2, instance: "http://127.0.0.1:\(port)", incarnation: "o", state: .ready, partitions: 4, at: 0))
        let target = "/api/v1/devices/\(Self.device(in: 2))/chats/c%401/archive"
        for attempt in 0..<3 {  // one after another: each answer is whole before the next request
            let head = try Self.head(target, ["x-api-key: k", "Content-Length: 5", "Connection: keep-alive"], method: "POST", body: "hello")
            let response = Self.settle(router.reply(head, Array("hello".utf8)) { .response(HTTPResponse(status: 500)) })
            #expect(response?.status == 202, "attempt \(attempt)")
            #expect(Self.text(response) == "got 5 bytes")
            #expect(Self.header(response, "ETag") == "\"7\"" && Self.header(response, "X-Ledger-Position") == "1:41")
            #expect(Self.header(response, "X-Ledger-Instance") == "http://owner")
        }
        let heads = seen.withLock { $0 }
        #expect(heads.count == 3)
        #expect(heads.first.map { $0.target == target && $0.method == "POST" } == true)
        #expect(heads.first?.header("x-ledger-forwarded") == "http://self:1")
        #expect(heads.first?.header("x-api-key") == "k")
    }

    @Test("a change stream relayed from its owner takes one of this instance's stream slots too: with the one slot taken by a relay, the next stream here is 503 too_many_streams")
    func relayedStreamsTakeSlots() throws {
        final class Events: HTTPStream {
            func poll() -> [UInt8] { Array("id: 1\nevent: version\ndata: {}\n\n".utf8) }
        }
        var ownerConfiguration = HTTPServer.Configuration()
        ownerConfiguration.port = 0
        let owner = HTTPServer(configuration: ownerConfiguration) { _, _ in
            .stream(head: HTTPResponse(status: 200, headers: [("Content-Type", "text/event-stream")]), Events())
        }
        let ownerPort = try owner.start()
        defer { owner.stop() }
        let table = ClusterOwnership()
        let router = ClusterRouter(ownership: table, identity: .init(url: "http://self:1", incarnation: "me"), forwardingThreads: 2)
        defer { router.stop() }
        for state in [MembershipRecord.State.owned, .ready] {
            table.apply(MembershipRecord(partition: 2, instance: "http://127.0.0.1:\(ownerPort)", incarnation: "o", state: state, partitions: 4, at: 0))
        }
        let api = QueryAPI(
            store: ProjectionStore(), keys: KeyRing(try APIKeys(json: Array(#"{"keys":[{"key":"k-123","devices":["*"],"role":"reader"}]}"#.utf8))),
            cluster: router)
        var configuration = HTTPServer.Configuration()
        configuration.port = 0
        configuration.loops = 1
        configuration.maxConnections = 2  // one stream slot
        let server = api.server(configuration: configuration)
        let port = try server.start()
        defer { server.stop() }
        router.wakeServer { server.wake() }
        let request = "GET /api/v1/devices/\(Self.device(in: 2))/changes HTTP/1.1\r\nHost: x\r\nx-api-key: k-123\r\n\r\n"
        let relayed = try LoopbackClient(port: port)
        defer { relayed.close() }
        relayed.send(request)
        #expect(relayed.readUntil("\r\n\r\n").hasPrefix("HTTP/1.1 200"), "relayed from the owner")
        let second = try LoopbackClient(port: port)
        defer { second.close() }
        second.send(request)
        let refused = second.readUntil("}")
        #expect(refused.hasPrefix("HTTP/1.1 503") && refused.contains("Retry-After: 1") && refused.contains("too_many_streams"), "\(refused)")
    }

    @Test("when ownership moves away from the owner a stream is relayed from, the client gets event: reconnect and the connection closes (no heartbeats on a stream that will never change)")
    func relayedStreamEndsWhenOwnershipMoves() throws {
        final class Events: HTTPStream {
            func poll() -> [UInt8] { Array("id: 1\nevent: version\ndata: {}\n\n".utf8) }
        }
        var ownerConfiguration = HTTPServer.Configuration()
        ownerConfiguration.port = 0
        let owner = HTTPServer(configuration: ownerConfiguration) { _, _ in
            .stream(head: HTTPResponse(status: 200, headers: [("Content-Type", "text/event-stream")]), Events())
        }
        let ownerPort = try owner.start()
        defer { owner.stop() }
        let table = ClusterOwnership()
        let router = ClusterRouter(ownership: table, identity: .init(url: "http://self:1", incarnation: "me"), forwardingThreads: 2)
        defer { router.stop() }
        for state in [MembershipRecord.State.owned, .ready] {
            table.apply(MembershipRecord(partition: 2, instance: "http://127.0.0.1:\(ownerPort)", incarnation: "o", state: state, partitions: 4, at: 0))
        }
        let api = QueryAPI(
            store: ProjectionStore(), keys: KeyRing(try APIKeys(json: Array(#"{"keys":[{"key":"k-123","devices":["*"],"role":"reader"}]}"#.utf8))),
            cluster: router)
        var configuration = HTTPServer.Configuration()
        configuration.port = 0
        let server = api.server(configuration: configuration)
        let port = try server.start()
        defer { server.stop() }
        router.wakeServer { server.wake() }
        let client = try LoopbackClient(port: port)
        defer { client.close() }
        client.send("GET /api/v1/devices/\(Self.device(in: 2))/changes HTTP/1.1\r\nHost: x\r\nx-api-key: k-123\r\n\r\n")
        #expect(client.readUntil("event: version").hasPrefix("HTTP/1.1 200"), "relayed from the owner")
        table.apply(MembershipRecord(partition: 2, instance: "http://127.0.0.1:9", incarnation: "n", state: .owned, partitions: 4, at: 1))
        let (rest, closed) = client.readUntilClosed()
        #expect(rest.contains("event: reconnect"), "\(rest)")
        #expect(closed, "the connection closes after the reconnect event")
        #expect(!rest.contains("keep-alive"), "nothing after it: \(rest)")
    }

    @Test("a forward asked after the forwarder stopped is answered at once, on the caller's thread: unreachable, the instance is stopping")
    func forwardAfterStop() throws {
        let forwarder = ClusterForwarder(threads: 1) {}
        forwarder.stop()
        let why = Mutex<String?>(nil)
        let address = try #require(InstanceAddress("http://127.0.0.1:1"))
        forwarder.forward(try Self.head("/api/v1/devices/d/chats"), [], to: address, sender: "http://self:1", isStream: false) { outcome in
            if case .unreachable(let reason) = outcome { why.withLock { $0 = reason } }
        }
        #expect(why.withLock { $0 } == "this instance is stopping")
    }
}
