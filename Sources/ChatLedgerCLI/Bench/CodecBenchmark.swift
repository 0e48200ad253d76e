import ChatEvents
import Foundation

/// `bench codec`: the hand-written parser against `JSONDecoder` on the same generated
/// events in the same run (one thread), plus the canonical encoder.
enum CodecBenchmark {
    static func run(events count: Int) -> BenchReport {
        var model = TrafficModel(.init(devices: 100, chatsPerDevice: 200, seed: 1))
        let values = (0..<count).map { _ in EventEncoder.encode(model.next().event) }
        let totalBytes = values.reduce(0) { $0 + $1.count }
        let parser = EventParser()

        // Each side runs for at least a second (or a fixed number of passes), so short
        // runs are not dominated by warm-up; the JSONDecoder side is slower, so it gets
        // a subset of the same events.
        var parsedEvents = 0
        var checksum = 0
        let parserSeconds = repeatFor(minimumSeconds: 1.0) {
            for value in values {
                if let event = try? parser.parse(value) { checksum &+= event.eventId.utf8.count }
            }
            parsedEvents += values.count
        }

        let decoder = JSONDecoder()
        let referenceValues = Array(values.prefix(max(100, count / 10)))
        var decodedEvents = 0
        let decoderSeconds = repeatFor(minimumSeconds: 1.0) {
            for value in referenceValues {
                if let event = try? ReferenceEventDecoder.decode(value, decoder: decoder) { checksum &+= event.eventId.utf8.count }
            }
            decodedEvents += referenceValues.count
        }

        let sampleEvents = values.compactMap { try? parser.parse($0) }
        var encodedEvents = 0
        let encoderSeconds = repeatFor(minimumSeconds: 0.5) {
            for event in sampleEvents { checksum &+= EventEncoder.encode(event).count }
            encodedEvents += sampleEvents.count
        }

        let parserRate = Double(parsedEvents) / parserSeconds
        let decoderRate = Double(decodedEvents) / decoderSeconds
        var report = BenchReport(bench: "codec")
        report.add("parser_events_per_s", parserRate, "events/s")
        report.add("parser_mb_per_s", parserRate * Double(totalBytes) / Double(values.count) / 1e6, "MB/s")
        report.add("jsondecoder_events_per_s", decoderRate, "events/s")
        report.add("parser_vs_jsondecoder", parserRate / decoderRate, "ratio")
        report.add("encoder_events_per_s", Double(encodedEvents) / encoderSeconds, "events/s")
        report.add("mean_event_bytes", Double(totalBytes) / Double(values.count), "bytes")
        report.add("events", Double(values.count), "events")
        report.notes.append("one thread; \(values.count) generated events (JSONDecoder on \(referenceValues.count) of them); checksum \(checksum & 0xFFFF)")
        return report
    }

    /// Runs `pass` until at least `minimumSeconds` have passed (and at least 3 times);
    /// returns the seconds taken.
    private static func repeatFor(minimumSeconds: Double, _ pass: () -> Void) -> Double {
        var elapsed = 0.0
        var passes = 0
        while elapsed < minimumSeconds || passes < 3 {
            elapsed += measureSeconds(pass)
            passes += 1
        }
        return elapsed
    }
}
