import Foundation

/// The figures of one benchmark run, printed as a table or as one JSON object:
/// `{"bench": NAME, "figures": {NAME: number, …}, "units": {NAME: unit, …}}`.
struct BenchReport {
    struct Figure {
        var name: String
        var value: Double
        var unit: String
    }

    var bench: String
    var figures: [Figure] = []
    /// Lines printed under the table (what was measured, on what).
    var notes: [String] = []

    mutating func add(_ name: String, _ value: Double, _ unit: String) {
        figures.append(Figure(name: name, value: value, unit: unit))
    }

    func render(json: Bool) -> String {
        if json {
            var figureValues: [String: Double] = [:]
            var units: [String: String] = [:]
            for figure in figures {
                figureValues[figure.name] = figure.value
                units[figure.name] = figure.unit
            }
            let object: [String: Any] = ["bench": bench, "figures": figureValues, "units": units]
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            return String(decoding: data, as: UTF8.self) + "\n"
        }
        let nameWidth = max(6, figures.map(\.name.count).max() ?? 0)
        var text = "bench \(bench)\n"
        for figure in figures {
            let value = figure.value >= 100 ? String(Int(figure.value.rounded())) : String(format: "%.3f", figure.value)
            text += "  " + figure.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  "
                + String(repeating: " ", count: max(0, 14 - value.count)) + value + "  " + figure.unit + "\n"
        }
        for note in notes { text += "  " + note + "\n" }
        return text
    }
}

/// Seconds taken by `body`, on the monotonic clock.
func measureSeconds(_ body: () throws -> Void) rethrows -> Double {
    let start = ContinuousClock.now
    try body()
    return (ContinuousClock.now - start) / .seconds(1)
}
