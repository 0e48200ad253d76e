@testable import ChatProjection
import Foundation
import LedgerSupport

/// Checkpoint files as older builds wrote them, made from one this build wrote.
enum OlderCheckpoint {
    /// The file or the state is not what this conversion expects.
    struct Unexpected: Error, CustomStringConvertible {
        var description: String
    }

    /// The bytes of `path` (a checkpoint of `state`, written by this build in format 6) as
    /// format `version` (6, 5, 4, 3 or 2) writes the same state: 6, 5 and 4 have the same layout; 3 and 2
    /// without the erased devices' versions (`state` must have none), 2 also without the
    /// unreadable count; its own CRC.
    static func bytes(of path: String, state: ProjectionState, topic: String, version: UInt16) throws -> [UInt8] {
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        guard bytes.count > 10, bytes[8] == 7, bytes[9] == 0 else { throw Unexpected(description: "this build writes version 7") }
        if (4...6).contains(version) { return withVersion(bytes, version) }
        guard state.erasedDeviceVersions.isEmpty, version == 2 || version == 3 else {
            throw Unexpected(description: "only a state without erased devices converts, to version 2 or 3")
        }
        // From the end: CRC (4), digest (32), the devices, their length (8), then the
        // erased devices' count (4, zero here).
        let devicesLength = ProjectionCodec.encodeDevices(state.devices).count
        let erasedStart = bytes.count - 4 - 32 - devicesLength - 8 - 4
        guard erasedStart > 0, bytes[erasedStart..<(erasedStart + 4)] == [0, 0, 0, 0] else {
            throw Unexpected(description: "no empty erased devices' section where expected")
        }
        bytes.removeSubrange(erasedStart..<(erasedStart + 4))
        if version == 2 {
            let countsStart = 8 + 2 + 8 + 4 + topic.utf8.count + 4 + state.positions.count * (4 + 8 + 32)
            bytes.removeSubrange((countsStart + 32)..<(countsStart + 40))
        }
        return withVersion(bytes, version)
    }

    /// `bytes` with format `version` and its CRC made again.
    private static func withVersion(_ bytes: [UInt8], _ version: UInt16) -> [UInt8] {
        var bytes = bytes
        bytes[8] = UInt8(version)
        bytes.removeLast(4)
        let crc = CRC32C.checksum(bytes)
        return bytes + [UInt8(crc & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 24)]
    }
}
