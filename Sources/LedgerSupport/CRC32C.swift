import CLedgerChecksums

/// CRC32C (Castagnoli), the checksum of every log record: the CPU's instruction where
/// it has SSE4.2, a table otherwise.
package enum CRC32C {
    /// The CRC32C of `bytes`, continuing from `crc` (0 to start).
    @inlinable
    package static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        cl_crc32c(crc, bytes.baseAddress, bytes.count)
    }

    /// The CRC32C of `bytes`.
    package static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }

    /// The table-driven path, for tests that compare it with the hardware one.
    package static func softwareChecksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { cl_crc32c_software(0, $0.baseAddress, $0.count) }
    }

    /// Whether the CPU instruction is used.
    package static var isHardwareAccelerated: Bool { cl_crc32c_is_hardware() != 0 }
}
