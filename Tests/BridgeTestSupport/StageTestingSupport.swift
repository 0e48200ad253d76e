import ChatEvents
import ChatProjection
import EventLog
import Foundation
import KafkaClient

/// What the adapter-stage tests of both test targets share: the topics and the mock
/// cluster a stage runs against, and the reference the chat lists it produces are compared
/// with. BridgeAdaptersTests' `StageTesting` (in-process stages) and ChatLedgerCLITests'
/// `AdaptTesting` (`chatledger adapt` processes) adopt it, so both call these as their own.
package protocol StageTestingSupport {}

/// A test's own failure, with what went wrong.
package struct StageTestFailure: Error, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}

extension StageTestingSupport {
    package typealias Failure = StageTestFailure

    package static var canonicalTopic: String { "wa.device-events" }
    package static var deadLetterTopic: String { "wa.adapt.dead-letters" }

    /// A mock cluster with the canonical topic, the dead-letter topic and `topics` (one
    /// partition each, as Evolution's broker-created topics have).
    package static func cluster(canonicalPartitions: Int = 4, topics: [String]) throws -> MockCluster {
        let cluster = try MockCluster(topics: [(canonicalTopic, canonicalPartitions), (deadLetterTopic, 1)])
        for topic in topics { try cluster.createTopic(topic, partitions: 1) }
        return cluster
    }

    /// Folds events in order (ids made unique) into a projection state: the reference.
    package static func fold(_ events: [Event]) -> ProjectionState {
        var state = ProjectionState()
        for (index, var event) in events.enumerated() {
            event.eventId = "m-\(index)"
            state.apply(event, at: LogPosition(partition: 0, offset: Int64(index)))
        }
        return state
    }

    /// Every device's chat list and archived chats as the API renders them (up to 500
    /// each), at a fixed clock; without the device's `version` (how many events it
    /// applied) if asked.
    package static func rendered(_ state: ProjectionState, devices: [String], withVersion: Bool = true) throws -> [String: String] {
        var views: [String: String] = [:]
        for device in devices {
            var text = ""
            for filter in [ChatListFilter.all, .archived] {
                let view = try ChatListRenderer.chatList(
                    state.devices[device], deviceId: device, query: ChatListQuery(filter: filter, limit: 500), now: 1_900_000_000_000)
                text += String(decoding: view.bytes, as: UTF8.self) + "\n"
            }
            while !withVersion, let range = text.range(of: #""version":[0-9]+,"#, options: .regularExpression) { text.removeSubrange(range) }
            views[device] = text
        }
        return views
    }

    /// The first difference between two renderings, for a readable failure; nil if none.
    package static func difference(_ expected: [String: String], _ actual: [String: String]) -> String? {
        for device in Set(expected.keys).union(actual.keys).sorted() where expected[device] != actual[device] {
            let left = expected[device] ?? "", right = actual[device] ?? ""
            let common = zip(left, right).prefix { $0 == $1 }.count
            return "\(device) differs at character \(common):\n expected …\(left.dropFirst(max(0, common - 150)).prefix(400))\n actual   …\(right.dropFirst(max(0, common - 150)).prefix(400))"
        }
        return nil
    }
}
