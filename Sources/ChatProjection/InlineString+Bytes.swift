import ChatEvents

extension InlineString {
    /// Calls `body` with the text's UTF-8 bytes, valid only inside it. Defined here, in
    /// the module that calls it per event, so it is specialised for each use.
    @inline(__always)
    func withBytes<Result>(_ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        guard var inline = inlineUTF8 else {
            let text = string
            return text.utf8.withContiguousStorageIfAvailable(body) ?? Array(text.utf8).withUnsafeBufferPointer(body)
        }
        return withUnsafeBytes(of: &inline.words) { raw in
            raw.withMemoryRebound(to: UInt8.self) { body(UnsafeBufferPointer(rebasing: $0[..<inline.count])) }
        }
    }
}
