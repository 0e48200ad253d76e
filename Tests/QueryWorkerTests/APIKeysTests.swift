import LedgerSupport
import QueryWorker
import Testing

@Suite("APIKeys: the keys file")
struct APIKeysTests {
    func load(_ entries: String) throws -> APIKeys { try APIKeys(json: Array(#"{"keys":[\#(entries)]}"#.utf8)) }

    @Test("a key's id is its id field, else sha256: and the first 12 hex digits of its SHA-256 (as the file shows it for keySha256); write is off unless true")
    func idsAndWrite() throws {
        let digest = SHA256.hash(Array("secret-2".utf8)).hex
        let keys = try load(#"""
            {"id":"crm","key":"secret-1","devices":["*"],"role":"reader","write":true},
            {"keySha256":"\#(digest)","devices":["dev-1"],"role":"auditor"},
            {"key":"secret-3","devices":["*"],"role":"reader","write":false}
            """#)
        let crm = try #require(keys.authenticate("secret-1"))
        #expect(crm.keyId == "crm")
        #expect(crm.mayWrite)
        let hashed = try #require(keys.authenticate("secret-2"))
        #expect(hashed.keyId == "sha256:" + digest.prefix(12))
        #expect(!hashed.mayWrite)
        let third = try #require(keys.authenticate("secret-3"))
        #expect(third.keyId == "sha256:" + SHA256.hash(Array("secret-3".utf8)).hex.prefix(12), "a key in clear is named by its digest too")
        #expect(!third.mayWrite)
        #expect(!third.keyId.contains("secret"))
    }

    @Test("ids are checked: allowed characters, length, unique (configured or derived); the same key twice is refused", arguments: [
        #"{"id":"has space","key":"a","devices":["*"],"role":"reader"}"#,
        #"{"id":"","key":"a","devices":["*"],"role":"reader"}"#,
        #"{"id":"\#(String(repeating: "x", count: 65))","key":"a","devices":["*"],"role":"reader"}"#,
        #"{"id":"same","key":"a","devices":["*"],"role":"reader"},{"id":"same","key":"b","devices":["*"],"role":"reader"}"#,
        #"{"id":"sha256:\#(SHA256.hash(Array("b".utf8)).hex.prefix(12))","key":"a","devices":["*"],"role":"reader"},{"key":"b","devices":["*"],"role":"reader"}"#,
        #"{"id":"one","key":"a","devices":["*"],"role":"reader"},{"id":"two","key":"a","devices":["*"],"role":"auditor"}"#,
        #"{"key":"a","devices":["*"],"role":"reader","write":"yes"}"#,
    ])
    func badIds(entries: String) {
        #expect(throws: APIKeys.LoadError.self) { _ = try load(entries) }
    }

    @Test("a load error names the entry, never the key")
    func errorsNameNoKey() {
        let error = #expect(throws: APIKeys.LoadError.self) {
            _ = try load(#"{"id":"x","key":"top-secret-key","devices":["*"],"role":"reader"},{"id":"x","key":"other-secret","devices":["*"],"role":"reader"}"#)
        }
        #expect(error?.description.contains("keys[1]") == true)
        #expect(error?.description.contains("secret") == false)
    }

    @Test("a key pasted into another field (a role, a flag, a device list) is not quoted by the error, which names the field", arguments: [
        (#"{"key":"a","devices":["*"],"role":"NEWKEY-SECRET-5555"}"#, "keys[0].role"),
        (#"{"key":"a","devices":["*"],"role":"reader","write":"NEWKEY-SECRET-5555"}"#, "keys[0].write"),
        (#"{"key":"a","devices":"NEWKEY-SECRET-5555","role":"reader"}"#, "keys[0].devices"),
    ])
    func decodingErrorsQuoteNoValue(entry: String, field: String) {
        let error = #expect(throws: APIKeys.LoadError.self) { _ = try load(entry) }
        #expect(error?.description.contains(field) == true, "\(error?.description ?? "")")
        #expect(error?.description.contains("SECRET") == false, "\(error?.description ?? "")")
    }
}
