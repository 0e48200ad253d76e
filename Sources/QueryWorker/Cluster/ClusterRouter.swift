import LedgerSupport
import Synchronization

/// Cluster mode's one decision per request (SPEC §9): a device route whose partition
/// another instance owns is forwarded to it and its answer relayed unchanged; one this
/// instance owns and has caught up is answered here; anything else (no owner known, the
/// owner still catching up or unreachable, ownership moving) is 503 with `Retry-After`.
///
/// Loops are impossible by construction: a forwarded request carries `X-Ledger-Forwarded`,
/// and an instance never forwards such a request again (it answers it or says 503). Every
/// answer this instance gives itself carries `X-Ledger-Instance` (its `--advertise` URL);
/// a relayed answer carries the owner's.
package final class ClusterRouter: Sendable {
    /// Who this instance is.
    package struct Identity: Sendable {
        /// `--advertise`.
        package var url: String
        /// This run's incarnation, as its membership records say; nil: any incarnation at
        /// `url` is this instance (`serve`, which follows the log of an `ingest` that
        /// advertises the same URL).
        package var incarnation: String?

        package init(url: String, incarnation: String?) {
            self.url = url
            self.incarnation = incarnation
        }
    }

    private let ownership: ClusterOwnership
    private let identity: Identity
    private let box: WakeBox
    private let counters = Mutex<[String: Int]>([:])
    /// Relays to the owners (created with the router, stopped by `stop()`).
    package let forwarder: ClusterForwarder

    /// The header a forwarded request carries (the sender's URL).
    package static let forwardedHeader = "X-Ledger-Forwarded"
    /// The header naming the instance that answered.
    package static let instanceHeader = "X-Ledger-Instance"

    package init(ownership: ClusterOwnership, identity: Identity, forwardingThreads: Int = 32) {
        self.ownership = ownership
        self.identity = identity
        let box = WakeBox()
        forwarder = ClusterForwarder(threads: forwardingThreads) { box.wake() }
        self.box = box
        ownership.onChange { box.wake() }
    }

    /// Where the HTTP server is woken (relayed streams with news, ownership changes that
    /// end streams); set once the server exists.
    package func wakeServer(with wake: @escaping @Sendable () -> Void) { box.set(wake) }

    /// Stops forwarding (the forwards in progress finish).
    package func stop() { forwarder.stop() }

    /// The reply to a request: `local()` (this instance's API) for every route but a
    /// device route owned elsewhere, which is forwarded, or 503 while its owner is not ready.
    package func reply(_ head: HTTPRequestHead, _ body: [UInt8], local: () -> HTTPServer.Reply) -> HTTPServer.Reply {
        reply(head, body, route: QueryAPI.match(head.path).match, local: local)
    }

    /// `reply` for a request whose route `QueryAPI` has matched already (nil: none), so
    /// the path is not matched again.
    func reply(_ head: HTTPRequestHead, _ body: [UInt8], route: APIRoute.Match?, local: () -> HTTPServer.Reply) -> HTTPServer.Reply {
        guard let device = Self.deviceRoute(route) else { return local().adding(Self.instanceHeader, identity.url) }
        guard let partitions = ownership.partitionCount else {
            return unavailable("cluster_membership_unknown", "this instance does not know the cluster's members yet")
        }
        let partition = DevicePartitioner.partition(of: device.id, partitions: partitions)
        let owner = ownership.owner(of: partition)
        if let owner, isSelf(owner) {
            guard owner.ready else { return unavailable("partition_catching_up", "partition \(partition) is still catching up here") }
            count("local")
            let reply = local()
            guard case .stream(let streamHead, let stream) = reply else { return reply.adding(Self.instanceHeader, identity.url) }
            let wrapped = OwnedStream(stream, stillOwned: { [self] in ownership.owner(of: partition).map { isSelf($0) && $0.ready } ?? false })
            return HTTPServer.Reply.stream(head: streamHead, wrapped).adding(Self.instanceHeader, identity.url)
        }
        if let sender = head.header(Self.forwardedHeader) {
            // Never forwarded twice: the sender thought this instance owned the partition.
            count("refused_forwarded")
            return unavailable("partition_moving", "partition \(partition) is not served here (forwarded by \(sender)); ownership is moving")
        }
        guard let owner else { return unavailable("partition_unowned", "no instance owns partition \(partition) right now") }
        guard owner.ready else { return unavailable("partition_catching_up", "partition \(partition)'s owner is still catching up") }
        guard let address = InstanceAddress(owner.instance) else {
            return unavailable("owner_unreachable", "partition \(partition)'s owner has an address this instance cannot use")
        }
        let fallback = unavailableResponse("owner_timeout", "partition \(partition)'s owner did not answer in time")
        let (forwarder, url, isStream) = (forwarder, identity.url, device.isStream)
        let stillThere: @Sendable () -> Bool = { [ownership] in ownership.owner(of: partition) == owner }
        count("forwarded")
        return .pending(deadline: .now + .milliseconds(40_000), fallback: fallback) { [self] complete in
            forwarder.forward(head, body, to: address, sender: url, isStream: isStream) { outcome in
                switch outcome {
                case .response(let response):
                    complete(.response(response))
                case .stream(let streamHead, let relay):
                    complete(.stream(head: streamHead, OwnedStream(relay, stillOwned: stillThere, onLost: { relay.end() })))
                case .unreachable(let why):
                    complete(self.unavailable("owner_unreachable", "partition \(partition)'s owner is unreachable: \(why)"))
                }
            }
        }
    }

    /// The partitions this run owns now (caught up or not); nil while the cluster's
    /// partition count is unknown. The device list shows only their devices: a partition
    /// another instance took over is left here as it was, and it must not show (an erasure
    /// applied by its owner would not be seen in it).
    package var ownedPartitions: Set<Int32>? {
        guard let count = ownership.partitionCount else { return nil }
        return Set((0..<Int32(count)).filter { partition in ownership.owner(of: partition).map(isSelf) ?? false })
    }

    /// Requests by what the router did with them (`local`, `forwarded`, …), for `/metrics`.
    package var decisions: [String: Int] { counters.withLock { $0 } }

    /// Registers `chatledger_cluster_requests_total{decision}`.
    package func registerMetrics(in registry: MetricsRegistry) {
        registry.collect("chatledger_cluster_requests_total", help: "Device requests by what cluster mode did with them.", kind: .counter) {
            self.decisions.sorted { $0.key < $1.key }.map { .init([("decision", $0.key)], Double($0.value)) }
        }
        ownership.registerMetrics(in: registry)
    }

    private func isSelf(_ owner: ClusterOwnership.Owner) -> Bool {
        owner.instance == identity.url && (identity.incarnation.map { $0 == owner.incarnation } ?? true)
    }

    private func count(_ decision: String) { counters.withLock { $0[decision, default: 0] += 1 } }

    private func unavailableResponse(_ code: String, _ message: String) -> HTTPResponse {
        var response = HTTPResponse.error(.serviceUnavailable, code: code, message: message)
        response.headers.append(("Retry-After", "1"))
        response.headers.append((Self.instanceHeader, identity.url))
        return response
    }

    private func unavailable(_ code: String, _ message: String) -> HTTPServer.Reply {
        count(code)
        return .response(unavailableResponse(code, message))
    }

    /// The device a device route names (`/api/v1/devices/{deviceId}/…`: reads, the change
    /// stream, writes), as the API's own route table matched it, and whether it is the
    /// change stream; nil for any other route (answered here: it is not a device's).
    static func deviceRoute(_ route: APIRoute.Match?) -> (id: String, isStream: Bool)? {
        guard let route, let id = route.deviceId, !id.isEmpty else { return nil }
        return (id, route.route.name == .changes)
    }
}

/// The server's wake, set after the router exists (the server is made with the router).
/// (In an array: a closure held directly in a `Mutex` is reabstracted on every access and
/// grows a chain of thunks.)
private final class WakeBox: Sendable {
    private let action = Mutex<[@Sendable () -> Void]>([])
    func set(_ wake: @escaping @Sendable () -> Void) { action.withLock { $0 = [wake] } }
    func wake() { for wake in action.withLock({ $0 }) { wake() } }
}
