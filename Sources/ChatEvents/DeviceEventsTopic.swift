/// The Kafka topic of canonical device events: where bridges (and adapter stages)
/// produce and ingest consumes. Declared once here; `--topic` overrides it.
package enum DeviceEventsTopic {
    /// `wa.device-events`.
    package static let defaultName = "wa.device-events"
}
