import Foundation

/// Every file under a directory with its bytes: what an erasure or a drop must leave no
/// trace in.
public enum DirectoryFiles {
    public static func all(under directory: String) throws -> [(path: String, bytes: [UInt8])] {
        try FileManager.default.subpathsOfDirectory(atPath: directory).compactMap { name in
            let path = directory + "/" + name
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { return nil }
            return (path, try Array(Data(contentsOf: URL(fileURLWithPath: path))))
        }
    }
}
