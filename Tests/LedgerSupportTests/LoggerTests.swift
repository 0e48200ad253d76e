import LedgerSupport
import Synchronization
import Testing

@Suite("Logger")
struct LoggerTests {
    final class Lines: Sendable {
        let lines = Mutex<[String]>([])
        var all: [String] { lines.withLock { $0 } }
    }

    func logger(_ level: Logger.Level = .debug) -> (Logger, Lines) {
        let sink = Lines()
        return (Logger(label: "test", minimumLevel: level) { line in sink.lines.withLock { $0.append(line) } }, sink)
    }

    @Test("a record is one logfmt line: time, level, label, message, then key=value pairs")
    func logfmtLine() throws {
        let (log, sink) = logger()
        log.info("hello", ["count": 3, "topic": "wa.device-events"])
        let line = try #require(sink.all.first)
        #expect(line.hasSuffix(" level=info label=test msg=hello count=3 topic=wa.device-events\n"))
        #expect(line.hasPrefix("time=20"))
        #expect(line.dropFirst(5).prefix(24).hasSuffix("Z"))
    }

    @Test("values with spaces, quotes, equals signs or newlines are quoted and escaped onto one line")
    func quoting() throws {
        let (log, sink) = logger()
        log.warning("two words", ["reason": "a \"b\"=c\nd", "empty": ""])
        let line = try #require(sink.all.first)
        #expect(line.contains(#"msg="two words""#))
        #expect(line.contains(#"reason="a \"b\"=c\nd""#))
        #expect(line.contains(#"empty="""#))
        #expect(line.filter { $0 == "\n" }.count == 1)
    }

    @Test("records below the minimum level are dropped")
    func levels() {
        let (log, sink) = logger(.warning)
        log.debug("no")
        log.info("no")
        log.warning("yes")
        log.error("yes")
        #expect(sink.all.count == 2)
    }
}
