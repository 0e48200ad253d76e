import Foundation
import KafkaTestSupport

/// GETs against a live `run` with its development key, for the suites that drive one.
protocol DemoKeyRequests {}

extension DemoKeyRequests {
    /// One GET with the development key; the response's status and JSON body.
    func get(_ port: UInt16, _ target: String) throws -> (status: Int, body: [String: Any]) {
        let answer = try HTTPAnswer.get(port, target, key: "demo-key")
        return (answer.status, answer.json)
    }

    /// The first chat's unread count in a chat-list body.
    func unreadCount(_ body: [String: Any]) -> Int? {
        ((body["chats"] as? [[String: Any]])?.first?["unreadCount"]) as? Int
    }
}
