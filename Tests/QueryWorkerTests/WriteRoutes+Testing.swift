import ChatEvents
import ChatProjection
import EventLog
import Foundation
import KafkaTestSupport
import QueryWorker
import Synchronization

/// A publisher standing in for Kafka: it records every event it is given and, as told,
/// writes it (at partition 0, the next offset; optionally applying it to a store, as
/// ingest would), fails it, or holds it until the test releases it.
final class FakePublisher: EventPublisher {
    enum Mode: Sendable {
        case write
        case fail(possiblyWritten: Bool)
        case hold
    }

    private struct State {
        var mode: Mode
        var published: [(key: [UInt8], value: [UInt8])] = []
        var held: [(position: LogPosition, value: [UInt8], completion: @Sendable (PublishOutcome) -> Void)] = []
        var nextOffset: Int64
    }

    let deliveryTimeout: Duration
    private let state: Mutex<State>
    /// Where a written event is applied at once (nil: the test applies it when it wants).
    private let applyTo: ProjectionStore?
    private let published = DispatchSemaphore(value: 0)

    init(mode: Mode = .write, deliveryTimeout: Duration = .seconds(5), applyTo: ProjectionStore? = nil, firstOffset: Int64 = 100) {
        self.deliveryTimeout = deliveryTimeout
        self.applyTo = applyTo
        state = Mutex(State(mode: mode, nextOffset: firstOffset))
    }

    func setMode(_ mode: Mode) { state.withLock { $0.mode = mode } }

    func publish(key: [UInt8], value: [UInt8], completion: @escaping @Sendable (PublishOutcome) -> Void) {
        let (mode, position) = state.withLock { state in
            state.published.append((key, value))
            guard case .fail = state.mode else {
                defer { state.nextOffset += 1 }
                let position = LogPosition(partition: 0, offset: state.nextOffset)
                if case .hold = state.mode { state.held.append((position, value, completion)) }
                return (state.mode, position)
            }
            return (state.mode, LogPosition(partition: 0, offset: -1))
        }
        switch mode {
        case .write:
            if let applyTo, let event = try? EventParser().parse(value) { applyTo.apply(event, at: position) }
            completion(.written(position))
        case .fail(let possiblyWritten):
            completion(.failed(reason: "Local: Message timed out", possiblyWritten: possiblyWritten))
        case .hold:
            break
        }
        published.signal()
    }

    /// Every value published so far, in order.
    var values: [[UInt8]] { state.withLock { $0.published.map(\.value) } }
    var keys: [[UInt8]] { state.withLock { $0.published.map(\.key) } }
    /// The events published so far.
    var events: [Event] { values.compactMap { try? EventParser().parse($0) } }

    /// Waits (at most 10 s) for the next publish not waited for yet; false on timeout.
    func waitForPublish() -> Bool { published.wait(timeout: .now() + 10) == .success }

    /// Completes every held event as written (applying it to `store` if given).
    func releaseHeld(applyingTo store: ProjectionStore? = nil) {
        let held = state.withLock { state in
            defer { state.held = [] }
            return state.held
        }
        for (position, value, completion) in held {
            if let store, let event = try? EventParser().parse(value) { store.apply(event, at: position) }
            completion(.written(position))
        }
    }
}

/// One HTTP exchange over a fresh loopback connection.
struct WireResponse {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]

    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:] }
    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    var text: String { String(decoding: body, as: UTF8.self) }

    static func exchange(
        _ port: UInt16, _ method: String, _ target: String, key: String?, body: [UInt8] = [], contentType: String? = "application/json",
        headers: [String] = []
    ) throws -> WireResponse {
        let client = try LoopbackClient(port: port)
        defer { client.close() }
        var head = "\(method) \(target) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        if let key { head += "x-api-key: \(key)\r\n" }
        if !body.isEmpty || method == "POST" {
            head += "Content-Length: \(body.count)\r\n"
            if let contentType, !body.isEmpty { head += "Content-Type: \(contentType)\r\n" }
        }
        for header in headers { head += header + "\r\n" }
        var bytes = Array((head + "\r\n").utf8) + body
        _ = write(client.fd, &bytes, bytes.count)
        let raw = Array(client.readToEnd().utf8)
        guard let end = raw.firstRange(of: Array("\r\n\r\n".utf8)) else { return WireResponse(status: -1, headers: [:], body: raw) }
        let lines = String(decoding: raw[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        var fields: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let status = Int(lines[0].split(separator: " ").dropFirst().first ?? "") ?? -1
        return WireResponse(status: status, headers: fields, body: Array(raw[end.upperBound...]))
    }
}
