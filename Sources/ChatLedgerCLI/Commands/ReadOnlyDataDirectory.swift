import Foundation
import LedgerSupport

/// The `--data` directory of a command that only reads the log (`verify`, `replay`,
/// `export`): one that does not exist is a clear error, never an empty answer.
enum ReadOnlyDataDirectory {
    /// The directory `--data` names, or nil after saying on stderr that there is none
    /// (the command then exits 1).
    static func existing(_ arguments: ParsedArguments, command: String) -> String? {
        let data = arguments.value(.data)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: data, isDirectory: &isDirectory), isDirectory.boolValue else {
            writeStandardError("chatledger \(command): no data directory at \(data)\n")
            return nil
        }
        return data
    }
}
