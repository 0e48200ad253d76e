/// The Kafka topic of canonical device events: where bridges (and adapter stages)
/// produce and ingest consumes. Declared once here; `--topic` overrides it.
public enum DeviceEventsTopic {
    /// `wa.device-events`.
    public static let defaultName = "wa.device-events"
}
