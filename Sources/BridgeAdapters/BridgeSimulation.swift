import ChatEvents

/// A simulated bridge: realistic records of one format, reproducible from a seed, each with
/// the canonical events it means (`produce --simulate --format`, `run --demo --demo-format`,
/// `bench adapt --format`, the end-to-end tests).
package protocol BridgeSimulation: Sendable {
    /// The format the records are in.
    var format: String { get }
    /// The topics it publishes on (create them before producing).
    var topics: [String] { get }
    /// A pattern (`--source-topics`) matching every topic it publishes on.
    var sourcePattern: String { get }
    /// The device ids.
    var deviceIds: [String] { get }
    /// The next record.
    mutating func next() -> EvolutionTraffic.Record
}

extension EvolutionTraffic: BridgeSimulation {
    package var format: String { EvolutionAdapter.formatName }
    package var sourcePattern: String { "^" + configuration.topicPrefix + "\\..*" }
}

extension BridgeTraffic: BridgeSimulation {
    package var topics: [String] { [topic] }
    package var sourcePattern: String { "^" + topic.split(separator: ".", omittingEmptySubsequences: false).joined(separator: "\\.") + "$" }
}

extension BridgeFormats {
    /// A simulation of `name`'s traffic: `devices` devices with `chats` chats each, records
    /// `meanGapMilliseconds` apart on average (nil: the simulation's default); nil when this
    /// build has none for the format.
    package static func simulation(
        named name: String, devices: Int, chats: Int, seed: UInt64, meanGapMilliseconds: Int64? = nil
    ) -> (any BridgeSimulation)? {
        if name == EvolutionAdapter.formatName {
            var configuration = EvolutionTraffic.Configuration(instances: devices, chatsPerInstance: chats, seed: seed)
            if let meanGapMilliseconds { configuration.meanGapMilliseconds = max(1, meanGapMilliseconds) }
            return EvolutionTraffic(configuration)
        }
        var configuration = TrafficModel.Configuration(devices: devices, chatsPerDevice: chats, seed: seed)
        if let meanGapMilliseconds { configuration.meanGapMilliseconds = max(1, meanGapMilliseconds) }
        return BridgeTraffic(format: name, configuration)
    }
}
