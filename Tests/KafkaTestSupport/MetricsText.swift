/// Reads samples out of a Prometheus text exposition (`/metrics`), for tests.
public enum MetricsText {
    /// The value of metric `name`: the sum over its label sets that contain `labels`
    /// (e.g. `format="evolution"`; nil: every label set); nil when no sample matches.
    public static func value(_ text: String, _ name: String, labels: String? = nil) -> Double? {
        var total: Double?
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") || line.hasPrefix(name + "{") {
            if let labels, !line.contains(labels) { continue }
            if let value = line.split(separator: " ").last.flatMap({ Double($0) }) { total = (total ?? 0) + value }
        }
        return total
    }
}
