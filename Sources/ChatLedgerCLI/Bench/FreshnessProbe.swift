#if canImport(Glibc)
import Glibc
#endif
import ChatEvents
import Ingest
import KafkaClient
import LedgerSupport
import Synchronization

/// Freshness under load, measured from outside a `run` child process: while a producer
/// sends `background` events at `rate` per second, markers (one incoming message each, for
/// the device `probe`) are produced one at a time and `GET …/probe/unread` is polled until
/// it shows each; a marker's delay runs from its produce call to the first response that
/// shows it. Used by `bench http` and `bench freshness`.
struct FreshnessProbe {
    /// When to stop producing markers.
    enum Until {
        case markers(Int)
        case seconds(Double)
    }

    /// What the markers showed.
    struct Result {
        /// Each visible marker's delay in ms, ascending.
        var delays: [Double]
        /// Markers still not visible after `markerTimeout` (counted in no percentile).
        var notVisible = 0
        /// Every marker in order.
        var markers: [Marker] = []
        /// The background load actually sent, events/s.
        var backgroundRate = 0.0

        var p50: Double { percentile(0.50) }
        var p99: Double { percentile(0.99) }
        var max: Double { delays.last ?? 0 }

        func percentile(_ fraction: Double) -> Double { HTTPBenchmark.percentile(delays, fraction) }
    }

    /// One marker: its event id, when it was produced and its delay in ms (nil: not
    /// visible); `produced` and `visible` also on `CLOCK_MONOTONIC` (ns), the clock of
    /// `run`'s stage trace (`FreshnessTrace`).
    struct Marker {
        var eventId: String
        var start: ContinuousClock.Instant
        var milliseconds: Double?
        var produced: Int64
        var visible: Int64?
    }

    static let topic = DeviceEventsTopic.defaultName

    /// The traffic sent in the background (its devices should exist in the projection).
    var background: TrafficModel
    /// Background events per second.
    var rate: Int
    /// Markers start at least this far apart (zero: back to back).
    var markerInterval: Duration = .zero
    /// A marker not visible after this is given up on.
    var markerTimeout: Duration = .seconds(10)
    /// Give up the whole run at the first marker not visible in time (else count it and go on).
    var failOnTimeout = true
    /// The background producer's `linger.ms`. Its events' own latency is not measured, but
    /// how it batches them is what the broker holds: the embedded mock broker finds a fetch
    /// offset by walking a partition's message sets from its oldest, for every partition
    /// of every fetch (a real broker has an offset index), so a set per event (1 ms at a
    /// few hundred events/s per partition) makes the mock the busiest thread of `run`.
    var backgroundLingerMilliseconds = 1
    /// A pause between two polls of one marker (zero: back to back). Each poll is a request
    /// `run` answers on its HTTP thread, so polling back to back keeps that thread and the
    /// poller busy (about a third of a core together at 50 markers/s) while the marker's
    /// way through Kafka and ingest needs the same cores; a pause costs at most its length
    /// in resolution.
    var pollPause: Duration = .zero

    func run(server: ServerProcess, until: Until) throws -> Result {
        let stopping = Atomic<Bool>(false)
        let sent = Atomic<Int>(0)
        let load = BackgroundLoad(model: background)
        let rate = self.rate
        let linger = String(backgroundLingerMilliseconds)
        let backgroundThread = LedgerThread(name: "bench-load") {
            guard let producer = try? KafkaProducer(bootstrapServers: server.brokers, configuration: KafkaConfiguration(["linger.ms": linger])) else {
                return
            }
            var model = load.take()
            let start = ContinuousClock.now
            var count = 0
            while !stopping.load(ordering: .acquiring) {
                // Paced in steps of 1 ms: the events due by now.
                let due = Int(Double(rate) * ((ContinuousClock.now - start) / .seconds(1)))
                while count < due {
                    let event = model.next().event
                    try? producer.send(topic: Self.topic, key: Array(event.deviceId.utf8), value: EventEncoder.encode(event))
                    count += 1
                }
                producer.poll()
                usleep(1_000)  // pacing the load generator, not synchronisation
            }
            sent.store(count, ordering: .releasing)
            try? producer.flush(timeoutMilliseconds: 10_000)
        }
        let loadStart = ContinuousClock.now
        backgroundThread.start()
        var result = Result(delays: [])
        var failure: (any Error)?
        do {
            let probe = try KafkaProducer(bootstrapServers: server.brokers, configuration: KafkaConfiguration(["linger.ms": "0"]))
            let client = try HTTPLoadClient(port: server.port)
            var index = 0
            var nextMarker = ContinuousClock.now
            func finished() -> Bool {
                switch until {
                case .markers(let count): return index >= count
                case .seconds(let seconds): return ContinuousClock.now - loadStart >= .milliseconds(Int(seconds * 1000))
                }
            }
            while !finished() {
                index += 1
                let marker = try self.marker(index, probe: probe, client: client)
                result.markers.append(marker)
                if let delay = marker.milliseconds {
                    result.delays.append(delay)
                } else if failOnTimeout {
                    throw BenchFailure("marker \(index) not visible after \(markerTimeout)")
                } else {
                    result.notVisible += 1
                }
                nextMarker = max(nextMarker + markerInterval, .now)
                let wait = nextMarker - .now
                if wait > .zero { usleep(UInt32(wait / .microseconds(1))) }  // spacing the markers, not synchronisation
            }
        } catch {
            failure = error
        }
        stopping.store(true, ordering: .releasing)
        backgroundThread.join()
        if let failure { throw failure }
        result.backgroundRate = Double(sent.load(ordering: .acquiring)) / ((ContinuousClock.now - loadStart) / .seconds(1))
        result.delays.sort()
        return result
    }

    /// Produces marker `index` and polls until the count shows it; its delay in ms is nil
    /// if it is not visible within `markerTimeout`.
    private func marker(_ index: Int, probe: KafkaProducer, client: HTTPLoadClient) throws -> Marker {
        let eventId = "probe-\(getpid())-\(index)"
        let event = Event(
            eventId: eventId, deviceId: "probe", occurredAt: Int64(index), chatId: "source@c.us",
            payload: .messageCreated(MessageCreated(messageId: "P\(index)", fromMe: false, kind: .text, preview: "probe")))
        let value = EventEncoder.encode(event)
        let start = ContinuousClock.now
        var marker = Marker(eventId: eventId, start: start, produced: FreshnessTrace.monotonicNanoseconds())
        try probe.send(topic: Self.topic, key: Array("probe".utf8), value: value)
        probe.poll()
        let expected = "\"unreadMessages\":\(index)}"
        while true {
            let body = try client.get("/api/v1/devices/probe/unread")
            if body.contains(expected) {
                marker.visible = FreshnessTrace.monotonicNanoseconds()
                marker.milliseconds = (ContinuousClock.now - start) / .milliseconds(1)
                return marker
            }
            if ContinuousClock.now - start > markerTimeout { return marker }
            probe.poll()
            if pollPause > .zero { usleep(UInt32(pollPause / .microseconds(1))) }  // pacing the poller, not synchronisation
        }
    }
}

/// Hands the background model to its thread.
private final class BackgroundLoad: @unchecked Sendable {
    // SAFETY: written once before the thread starts, taken once by that thread.
    private var model: TrafficModel

    init(model: TrafficModel) { self.model = model }

    func take() -> TrafficModel { model }
}
