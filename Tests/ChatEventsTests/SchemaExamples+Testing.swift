import Foundation

/// The schema's example files (`schemas/examples`), the parser's byte fixtures.
enum SchemaExamples {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("schemas/examples")

    struct Expectation: Decodable, Sendable {
        var code: String
        var path: String
        var detectedBy: String
        var reason: String
    }

    static func files(_ folder: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent(folder).path)) ?? []
        return names.filter { $0.hasSuffix(".json") && $0 != "manifest.json" }.sorted()
    }

    static func bytes(_ folder: String, _ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: root.appendingPathComponent(folder).appendingPathComponent(name)))
    }

    static func manifest() throws -> [String: Expectation] {
        try JSONDecoder().decode([String: Expectation].self, from: Data(bytes("invalid", "manifest.json")))
    }
}
