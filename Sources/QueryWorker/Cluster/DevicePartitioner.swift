/// The partition of the canonical topic a device's events are on: what librdkafka's
/// `murmur2_random` partitioner (and the Java client's default) picks for the key, the
/// device id: `murmur2(key) & 0x7fffffff` modulo the partition count. ChatLedger's own
/// producers (the write API, the adapter stage, `produce`) are configured with it; a bridge
/// producing with another partitioner (librdkafka's default `consistent_random`, CRC32)
/// puts devices elsewhere, and cluster mode would route their requests wrongly.
package enum DevicePartitioner {
    /// The partition of `deviceId` among `partitions` (> 0).
    package static func partition(of deviceId: String, partitions: Int) -> Int32 {
        Int32((Int(murmur2(Array(deviceId.utf8)) & 0x7fff_ffff)) % max(1, partitions))
    }

    /// Kafka's murmur2 (seed 0x9747b28c), as the Java client and librdkafka compute it.
    package static func murmur2(_ data: [UInt8]) -> UInt32 {
        let seed: UInt32 = 0x9747_b28c
        let m: UInt32 = 0x5bd1_e995
        let r: UInt32 = 24
        var h = seed ^ UInt32(truncatingIfNeeded: data.count)
        var index = 0
        while index + 4 <= data.count {
            var k = UInt32(data[index]) | UInt32(data[index + 1]) << 8 | UInt32(data[index + 2]) << 16 | UInt32(data[index + 3]) << 24
            k &*= m
            k ^= k >> r
            k &*= m
            h &*= m
            h ^= k
            index += 4
        }
        let rest = data.count - index
        if rest >= 3 { h ^= UInt32(data[index + 2]) << 16 }
        if rest >= 2 { h ^= UInt32(data[index + 1]) << 8 }
        if rest >= 1 {
            h ^= UInt32(data[index])
            h &*= m
        }
        h ^= h >> 13
        h &*= m
        h ^= h >> 15
        return h
    }
}
