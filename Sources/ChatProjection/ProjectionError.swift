/// A problem with projection checkpoints: which file and what is wrong with it.
package struct ProjectionError: Error, Sendable, CustomStringConvertible {
    package let path: String
    package let message: String

    package init(path: String, _ message: String) {
        self.path = path
        self.message = message
    }

    package var description: String { "\(path): \(message)" }
}
