import Foundation

/// Byte-level surgery on segment files, to damage logs the way crashes and attackers do.
enum LogDamage {
    /// (position, length) of every record frame in a segment.
    static func frames(_ path: String) throws -> [(position: Int, length: Int)] {
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
        var position = Int(bytes[10]) | Int(bytes[11]) << 8
        var frames: [(Int, Int)] = []
        while position + 8 <= bytes.count {
            let length = 8 + (Int(bytes[position]) | Int(bytes[position + 1]) << 8 | Int(bytes[position + 2]) << 16 | Int(bytes[position + 3]) << 24)
            guard position + length <= bytes.count else { break }
            frames.append((position, length))
            position += length
        }
        return frames
    }

    /// A segment's header version (bytes 8–9, little-endian).
    static func headerVersion(_ path: String) throws -> UInt16 {
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
        return UInt16(bytes[8]) | UInt16(bytes[9]) << 8
    }

    static func edit(_ path: String, _ change: (inout [UInt8]) -> Void) throws {
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
        change(&bytes)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }
}
