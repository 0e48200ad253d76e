/// Reads one partition's log in offset order, checking every record's CRC.
///
/// Safe to use while a writer (in this or another process) appends: a partial record at
/// the end of the last segment is where the writer is, and reading stops before it.
package struct PartitionReader: Sendable {
    package let directory: String
    package let topic: String
    package let partition: Int32

    package init(directory: String, topic: String, partition: Int32) {
        self.directory = directory
        self.topic = topic
        self.partition = partition
    }

    /// Visits the records with offset ≥ `offset`, in order, until `body` returns false.
    /// The view is valid only during the call (see `RecordView.owned()`).
    /// - Throws: `EventLogError` for damage (a bad CRC, a partial record in a sealed
    ///   segment), or what `body` throws.
    package func forEach(from offset: Int64 = 0, _ body: (RecordView) throws -> Bool) throws {
        let bases = try PartitionWriter.segmentBases(in: directory)
        guard !bases.isEmpty else { return }
        let first = bases.lastIndex { $0 <= offset } ?? 0
        for segmentIndex in first..<bases.count {
            let base = bases[segmentIndex]
            let isLast = segmentIndex == bases.count - 1
            let path = directory + "/" + LogFormat.segmentFileName(baseOffset: base)
            guard case .scanner(var scanner) = try SegmentScanner.open(path) else {
                if isLast { return }  // being created right now
                throw EventLogError.corruption("invalid segment header", path: path, byteOffset: 0, kafkaOffset: nil)
            }
            if segmentIndex == first, offset > base, let start = try startEntry(base: base, offset: offset) {
                scanner.seek(to: start.position)
            }
            scanning: while true {
                switch try scanner.next() {
                case .record(let record, _):
                    if record.offset >= offset, try !body(record) { return }
                case .end:
                    break scanning
                case .incomplete(let position):
                    if isLast { return }
                    throw EventLogError.corruption("partial record in a sealed segment", path: path, byteOffset: position, kafkaOffset: nil)
                case .invalid(let position, let reason):
                    throw EventLogError.corruption(reason, path: path, byteOffset: position, kafkaOffset: nil)
                }
            }
        }
    }

    /// Copies of the records with offset ≥ `offset` (at most `limit`).
    package func records(from offset: Int64 = 0, limit: Int = .max) throws -> [LogRecord] {
        var records: [LogRecord] = []
        try forEach(from: offset) { record in
            records.append(record.owned())
            return records.count < limit
        }
        return records
    }

    /// The index entry to start from for `offset` in a sealed segment, if it has a valid index.
    private func startEntry(base: Int64, offset: Int64) throws -> IndexEntry? {
        let path = directory + "/" + LogFormat.indexFileName(baseOffset: base)
        guard let bytes = try? LogFile.readAll(path), let entries = LogFormat.decodeIndex(bytes) else { return nil }
        return entries.last { $0.offset <= offset }
    }
}
