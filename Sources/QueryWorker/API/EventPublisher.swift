import EventLog

/// Where the write API sends the events it makes: one record each on the canonical topic,
/// keyed by the device id. The commands give a Kafka producer; tests give fakes.
package protocol EventPublisher: Sendable {
    /// The longest `publish` takes to call its completion (the producer's delivery timeout).
    var deliveryTimeout: Duration { get }

    /// Sends one event's bytes keyed by `key`; calls `completion` exactly once, from any
    /// thread (possibly before returning), with where the record was written or why not.
    /// Must not block: it is called on the HTTP server's loop thread.
    func publish(key: [UInt8], value: [UInt8], completion: @escaping @Sendable (PublishOutcome) -> Void)
}

/// What became of one published event.
package enum PublishOutcome: Sendable, Equatable {
    /// Written at this Kafka position (the `X-Ledger-Position` the projection will reach).
    case written(LogPosition)
    /// Not acknowledged: `possiblyWritten` when the broker may have written it even so (a
    /// request was in flight when the time ran out); false when it certainly did not.
    case failed(reason: String, possiblyWritten: Bool)
}
