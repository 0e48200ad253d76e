import Foundation
import Ingest

/// Where the markers' delays went, from `run`'s stage trace (`FreshnessTrace`) lined up
/// with the probe's own produce and visible times (all `CLOCK_MONOTONIC`): per marker, ms
/// from produced to fetched by ingest (`kafka`), to its batch in the log (`append`), to the
/// applier taking the batch (`queue`), to the record in the projection (`apply`), and to
/// the first poll answer that showed it (`poll`). `poll` can be a little below zero: the
/// `applied` stamp is taken after the fold has released the projection's lock, and a query
/// may answer in between.
struct FreshnessStages {
    static let names = ["kafka", "append", "queue", "apply", "poll"]

    /// One marker traced through every stage.
    struct Traced {
        var start: ContinuousClock.Instant
        var total: Double
        /// ms per stage, in `names` order.
        var stages: [Double]
    }

    /// Markers traced through every stage, in produce order.
    var traced: [Traced] = []
    /// Visible markers the trace lacks a stage of.
    var untraced = 0

    /// Reads the trace file `run` wrote and joins it with `markers`.
    init(markers: [FreshnessProbe.Marker], traceFile: String) {
        var positions: [String: String] = [:]  // event id → "partition offset"
        var times: [String: [String: Int64]] = [:]  // "partition offset" → stage → ns
        let text = (try? String(contentsOfFile: traceFile, encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 4, let nanoseconds = Int64(fields[3]) else { continue }
            let position = String(fields[1]) + " " + String(fields[2])
            if fields.count >= 5, positions[String(fields[4])] == nil { positions[String(fields[4])] = position }
            if times[position, default: [:]][String(fields[0])] == nil { times[position, default: [:]][String(fields[0])] = nanoseconds }
        }
        for marker in markers {
            guard let visible = marker.visible else { continue }
            guard let position = positions[marker.eventId], let stamps = times[position],
                let fetched = stamps[FreshnessTrace.Stage.fetched.rawValue], let appended = stamps[FreshnessTrace.Stage.appended.rawValue],
                let dequeued = stamps[FreshnessTrace.Stage.dequeued.rawValue], let applied = stamps[FreshnessTrace.Stage.applied.rawValue]
            else {
                untraced += 1
                continue
            }
            let points = [marker.produced, fetched, appended, dequeued, applied, visible]
            let stages = (1..<points.count).map { Double(points[$0] - points[$0 - 1]) / 1e6 }
            traced.append(Traced(start: marker.start, total: Double(visible - marker.produced) / 1e6, stages: stages))
        }
    }

    /// Adds per stage p50, p99 and max, the mean of each stage over the slowest 1 % of
    /// markers (`tail_…`), and the slowest marker's stages; notes on the five slowest.
    func add(to report: inout BenchReport, label: String, since start: ContinuousClock.Instant) {
        guard !traced.isEmpty else {
            report.notes.append("\(label): no stage trace (a run child without FreshnessTrace?)")
            return
        }
        for (index, name) in Self.names.enumerated() {
            let sorted = traced.map { $0.stages[index] }.sorted()
            report.add("stage_\(name)_p50_ms_\(label)", HTTPBenchmark.percentile(sorted, 0.50), "ms")
            report.add("stage_\(name)_p99_ms_\(label)", HTTPBenchmark.percentile(sorted, 0.99), "ms")
            report.add("stage_\(name)_max_ms_\(label)", sorted.last ?? 0, "ms")
        }
        let slowest = traced.sorted { $0.total > $1.total }
        let tail = slowest.prefix(max(1, traced.count / 100))
        for (index, name) in Self.names.enumerated() {
            report.add("tail_\(name)_ms_\(label)", tail.map { $0.stages[index] }.reduce(0, +) / Double(tail.count), "ms")
        }
        for marker in slowest.prefix(5) {
            let stages = zip(Self.names, marker.stages).map { "\($0) \(String(format: "%.1f", $1))" }.joined(separator: " + ")
            report.notes.append(
                "\(label) slow marker at +\(String(format: "%.1f", (marker.start - start) / .seconds(1))) s: "
                    + "\(String(format: "%.1f", marker.total)) ms = \(stages)")
        }
        if untraced > 0 { report.add("markers_untraced_\(label)", Double(untraced), "markers") }
    }
}
