import Foundation
import KafkaTestSupport

/// GETs against a live `run` with its development key, for the suites that drive one.
protocol DemoKeyRequests {}

extension DemoKeyRequests {
    /// One GET with the development key; the response's status and JSON body.
    func get(_ port: UInt16, _ target: String) throws -> (status: Int, body: [String: Any]) {
        let client = try LoopbackClient(port: port)
        defer { client.close() }
        client.send("GET \(target) HTTP/1.1\r\nHost: x\r\nx-api-key: demo-key\r\nConnection: close\r\n\r\n")
        let response = client.readToEnd()
        let status = Int(response.split(separator: " ").dropFirst().first ?? "") ?? -1
        guard let start = response.range(of: "\r\n\r\n") else { return (status, [:]) }
        let body = (try? JSONSerialization.jsonObject(with: Data(response[start.upperBound...].utf8))) as? [String: Any] ?? [:]
        return (status, body)
    }

    /// The first chat's unread count in a chat-list body.
    func unreadCount(_ body: [String: Any]) -> Int? {
        ((body["chats"] as? [[String: Any]])?.first?["unreadCount"]) as? Int
    }
}
