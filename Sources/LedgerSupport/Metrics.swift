import Synchronization

/// Metrics in the Prometheus text exposition format (version 0.0.4).
///
/// Histograms are updated where things happen; values that already live elsewhere
/// (ingest and cache counters, partition offsets, file sizes) are read when scraped
/// through a collector, so there is one source of truth for each. Names follow Prometheus
/// conventions: `_total` for counters, base units (seconds, bytes).
package final class MetricsRegistry: Sendable {
    /// A metric's type line.
    package enum Kind: String, Sendable {
        case counter, gauge, histogram
    }

    /// One sample a collector reports: label pairs and a value.
    package struct Sample: Sendable {
        /// Label names and values, in the order they are printed.
        package var labels: [(name: String, value: String)]
        package var value: Double

        /// A sample with labels.
        package init(_ labels: [(name: String, value: String)], _ value: Double) {
            self.labels = labels
            self.value = value
        }

        /// A sample without labels.
        package init(_ value: Double) {
            self.init([], value)
        }
    }

    private struct Family {
        var name: String
        var help: String
        var kind: Kind
        var render: @Sendable (inout String) -> Void
    }

    private let families = Mutex<[Family]>([])

    /// An empty registry.
    package init() {}

    /// A histogram with fixed label names and bucket upper bounds (ascending).
    package func histogram(_ name: String, help: String, labels: [String] = [], buckets: [Double]) -> Histogram {
        let histogram = Histogram(name: name, labelNames: labels, buckets: buckets)
        add(Family(name: name, help: help, kind: .histogram) { histogram.render(into: &$0) })
        return histogram
    }

    /// A metric whose samples are read from their owner when scraped.
    package func collect(_ name: String, help: String, kind: Kind, _ samples: @escaping @Sendable () -> [Sample]) {
        add(Family(name: name, help: help, kind: kind) { text in
            for sample in samples() { Self.line(&text, name, sample.labels, sample.value) }
        })
    }

    /// Every metric, as the body of `GET /metrics`.
    package func render() -> String {
        var text = ""
        for family in families.withLock({ $0 }) {
            text += "# HELP \(family.name) \(family.help)\n# TYPE \(family.name) \(family.kind.rawValue)\n"
            family.render(&text)
        }
        return text
    }

    private func add(_ family: Family) {
        families.withLock { $0.append(family) }
    }

    /// One sample line: `name{label="value",…} value`.
    static func line(_ text: inout String, _ name: String, _ labels: [(name: String, value: String)], _ value: Double) {
        text += name
        if !labels.isEmpty {
            text += "{"
            for (index, label) in labels.enumerated() {
                if index > 0 { text += "," }
                text += label.name + "=\"" + escape(label.value) + "\""
            }
            text += "}"
        }
        text += " " + format(value) + "\n"
    }

    static func format(_ value: Double) -> String {
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }

    /// Label values escape backslash, double quote and line feed.
    static func escape(_ value: String) -> String {
        guard value.contains(where: { $0 == "\\" || $0 == "\"" || $0 == "\n" }) else { return value }
        var escaped = ""
        for character in value {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    /// Observations counted into cumulative buckets per label set, with their sum.
    package final class Histogram: Sendable {
        private struct Series {
            var buckets: [UInt64]
            var sum = 0.0
            var count: UInt64 = 0

            mutating func record(_ value: Double, inBucket bucket: Int) {
                buckets[bucket] += 1
                sum += value
                count += 1
            }
        }

        private let name: String
        private let labelNames: [String]
        private let bounds: [Double]
        private let series = Mutex<[[String]: Series]>([:])

        init(name: String, labelNames: [String], buckets: [Double]) {
            self.name = name
            self.labelNames = labelNames
            self.bounds = buckets
        }

        /// Records one observation for these label values.
        package func observe(_ value: Double, _ labelValues: [String] = []) {
            let bucket = bounds.firstIndex { value <= $0 } ?? bounds.count
            let empty = bounds.count + 1
            series.withLock { series in
                series[labelValues, default: Series(buckets: Array(repeating: 0, count: empty))].record(value, inBucket: bucket)
            }
        }

        /// How many observations were recorded for these label values.
        package func count(_ labelValues: [String] = []) -> UInt64 { series.withLock { $0[labelValues]?.count ?? 0 } }

        func render(into text: inout String) {
            for (labelValues, entry) in series.withLock({ $0 }).sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
                let labels = Array(zip(labelNames, labelValues)).map { (name: $0, value: $1) }
                var cumulative: UInt64 = 0
                for (index, count) in entry.buckets.enumerated() {
                    cumulative += count
                    let bound = index < bounds.count ? MetricsRegistry.format(bounds[index]) : "+Inf"
                    MetricsRegistry.line(&text, name + "_bucket", labels + [("le", bound)], Double(cumulative))
                }
                MetricsRegistry.line(&text, name + "_sum", labels, entry.sum)
                MetricsRegistry.line(&text, name + "_count", labels, Double(entry.count))
            }
        }
    }
}
