import ChatEvents
import Testing

/// JSON Schema's `integer` is a value, not a spelling: `49.0` and `4.9e1` are the integer 49.
/// The parser takes such numbers where the schema says integer, exactly (no `Double`), and
/// refuses any with a fractional part or beyond 64 bits.
@Suite("Whole numbers written with a fraction or exponent")
struct WholeNumberTests {
    private let parser = EventParser()

    private func muteUntil(_ number: String) throws -> EventPayload {
        try parser.parseData(Array(#"{"muteUntil":\#(number)}"#.utf8), type: .chatMuted, maxBytes: 4096)
    }

    @Test("a whole number with a fraction or exponent is that integer", arguments: [
        ("49.0", Int64(49)), ("49.000", 49), ("4.9e1", 49), ("4.9E+1", 49), ("1200e-2", 12), ("0.0", 0), ("0e5", 0),
        ("-1.0", -1), ("-10e-1", -1), ("1.7325e12", 1_732_500_000_000), ("9223372036854775807.0", Int64.max),
        ("922337203685477580.7e1", Int64.max),
    ])
    func wholeNumbers(number: String, value: Int64) throws {
        #expect(try muteUntil(number) == .chatMuted(muteUntil: value))
    }

    @Test("a fraction, a number past 64 bits, or a malformed number is refused with its reason", arguments: [
        ("1.5", EventValidationError.Code.wrongType), ("1e-1", .wrongType), ("12.55e1", .wrongType), ("-0.5", .wrongType),
        ("9223372036854775808.0", .invalidValue), ("1e19", .invalidValue), ("1e999999999", .invalidValue),
        ("1.", .invalidJSON), ("1.e3", .invalidJSON), ("1e", .invalidJSON), ("1e+", .invalidJSON), ("01.0", .invalidJSON),
    ])
    func refusedNumbers(number: String, code: EventValidationError.Code) {
        let error = #expect(throws: EventValidationError.self, "\(number)") { _ = try muteUntil(number) }
        #expect(error?.code == code, "\(number): \(String(describing: error))")
    }
}
