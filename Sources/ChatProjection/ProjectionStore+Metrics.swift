import LedgerSupport

extension ProjectionStore {
    /// Registers the snapshot cache's counters, the number of devices and the applied
    /// offset per partition (all read when scraped).
    package func registerMetrics(in registry: MetricsRegistry) {
        let cacheCounters: [(name: String, help: String, value: @Sendable (SnapshotCache.Counters) -> Int)] = [
            ("chatledger_cache_hits_total", "Snapshot cache lookups answered from the cache.", { $0.hits }),
            ("chatledger_cache_misses_total", "Snapshot cache lookups that had to render.", { $0.misses }),
            ("chatledger_cache_invalidations_total", "Device snapshots dropped because an event changed the device.", { $0.invalidations }),
            ("chatledger_cache_evictions_total", "Snapshots evicted to stay within the byte budget.", { $0.evictions }),
            ("chatledger_cache_stale_fills_rejected_total", "Renders not cached because the device changed meanwhile.", { $0.staleFillsRejected }),
        ]
        for counter in cacheCounters {
            registry.collect(counter.name, help: counter.help, kind: .counter) { [self] in [.init(Double(counter.value(self.cacheCounters)))] }
        }
        registry.collect("chatledger_cache_bytes", help: "Bytes of rendered snapshots in the cache.", kind: .gauge) {
            [.init(Double(self.cacheCounters.bytes))]
        }
        registry.collect("chatledger_cache_entries", help: "Rendered snapshots in the cache.", kind: .gauge) {
            [.init(Double(self.cacheCounters.entries))]
        }
        registry.collect("chatledger_projection_devices", help: "Devices in the projection.", kind: .gauge) {
            [.init(Double(self.deviceCount))]
        }
        registry.collect(
            "chatledger_projection_unreadable_events_total", help: "Stored event records this build could not parse (each logged with its position).",
            kind: .counter
        ) { [.init(Double(self.counts.unreadable))] }
        registry.collect("chatledger_projection_applied_offset", help: "The last log offset applied to the projection, per partition.", kind: .gauge) {
            self.appliedOffsets.sorted { $0.key < $1.key }.map { .init([("partition", String($0.key))], Double($0.value)) }
        }
    }
}
