import EventLog
import Testing

/// The dead-letter reason's one grammar: written by ingest, read by `verify`.
@Suite("Dead-letter reasons")
struct DeadLetterReasonTests {
    @Test("a reason reads back into the code, path and message it was written from", arguments: [
        DeadLetterReason(code: "missing_field", path: "data.messageId", message: "required"),
        DeadLetterReason(code: "invalid_json", path: "", message: "no value (a tombstone)"),
        DeadLetterReason(code: "wrong_type", path: "data.participants[3]", message: "expected a string: got 7"),
    ])
    func roundTrip(reason: DeadLetterReason) {
        #expect(DeadLetterReason(parsing: reason.description) == reason)
    }

    @Test("the code is what comes before the first space or colon, as reasons written by hand have it")
    func codeOfHandWrittenReasons() {
        #expect(DeadLetterReason(parsing: "invalid_json : x").code == "invalid_json")
        #expect(DeadLetterReason(parsing: "offset_out_of_range: the broker's log starts at 5").code == "offset_out_of_range")
        #expect(DeadLetterReason(parsing: "").code == "")
    }
}
