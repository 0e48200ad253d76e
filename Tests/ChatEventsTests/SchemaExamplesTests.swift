import ChatEvents
import Testing

@Suite("Schema examples through the parser")
struct SchemaExamplesTests {
    @Test("the example folders are populated")
    func examplesExist() {
        #expect(SchemaExamples.files("valid").count >= EventType.allCases.count)
        #expect(SchemaExamples.files("invalid").count >= 20)
    }

    @Test("every valid example parses, and the reference decoder agrees", arguments: SchemaExamples.files("valid"))
    func validExampleParses(name: String) throws {
        let bytes = try SchemaExamples.bytes("valid", name)
        let event = try EventParser().parse(bytes)
        #expect(event == (try ReferenceEventDecoder.decode(bytes)))
    }

    @Test("every valid example type is covered")
    func everyTypeHasAnExample() throws {
        var types = Set<String>()
        for name in SchemaExamples.files("valid") {
            types.insert(try EventParser().parse(SchemaExamples.bytes("valid", name)).type)
        }
        for type in EventType.allCases {
            #expect(types.contains(type.rawValue), "no valid example of \(type.rawValue)")
        }
    }

    @Test("every invalid example is rejected with the manifest's code and path", arguments: SchemaExamples.files("invalid"))
    func invalidExampleIsRejected(name: String) throws {
        let expectation = try #require(try SchemaExamples.manifest()[name], "\(name) is not in manifest.json")
        let bytes = try SchemaExamples.bytes("invalid", name)
        let error = #expect(throws: EventValidationError.self) { try EventParser().parse(bytes) }
        #expect(error?.code.description == expectation.code, "\(error.map(String.init(describing:)) ?? "")")
        #expect(error?.path == expectation.path, "\(error.map(String.init(describing:)) ?? "")")
    }
}
