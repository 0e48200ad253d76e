import LedgerSupport
import Testing

@Suite("MetricsRegistry: Prometheus text format")
struct MetricsRegistryTests {
    @Test("collected counters and gauges and histograms render with HELP/TYPE lines, escaped labels and cumulative buckets")
    func rendersTextFormat() {
        let registry = MetricsRegistry()
        registry.collect("app_requests_total", help: "Requests.", kind: .counter) {
            [.init([("route", "/a\"b\\c\nd")], 1), .init([("route", "/x")], 2)]
        }
        registry.collect("app_lag", help: "Lag.", kind: .gauge) { [.init([("partition", "0")], 7), .init(1.5)] }
        let durations = registry.histogram("app_seconds", help: "Time.", buckets: [0.1, 1])
        durations.observe(0.05)
        durations.observe(0.5)
        durations.observe(5)

        #expect(registry.render() == """
            # HELP app_requests_total Requests.
            # TYPE app_requests_total counter
            app_requests_total{route="/a\\"b\\\\c\\nd"} 1
            app_requests_total{route="/x"} 2
            # HELP app_lag Lag.
            # TYPE app_lag gauge
            app_lag{partition="0"} 7
            app_lag 1.5
            # HELP app_seconds Time.
            # TYPE app_seconds histogram
            app_seconds_bucket{le="0.1"} 1
            app_seconds_bucket{le="1"} 2
            app_seconds_bucket{le="+Inf"} 3
            app_seconds_sum 5.55
            app_seconds_count 3

            """)
        #expect(durations.count() == 3)
    }
}
