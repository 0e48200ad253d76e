import LedgerSupport
import Testing

@Suite("CRC32C and SHA-256 against published vectors")
struct ChecksumTests {
    // RFC 3720 (iSCSI) appendix B.4 and the common "123456789" check value.
    @Test("CRC32C matches the published vectors, on the hardware and the table path", arguments: [
        (Array("123456789".utf8), UInt32(0xE306_9283)),
        ([UInt8](repeating: 0, count: 32), UInt32(0x8A91_36AA)),
        ([UInt8](repeating: 0xFF, count: 32), UInt32(0x62A8_AB43)),
        ((0..<32).map { UInt8($0) }, UInt32(0x46DD_794E)),
        ((0..<32).map { UInt8(31 - $0) }, UInt32(0x113F_DB5C)),
        ([], UInt32(0)),
    ])
    func crc32cVectors(bytes: [UInt8], expected: UInt32) {
        #expect(CRC32C.checksum(bytes) == expected)
        #expect(CRC32C.softwareChecksum(bytes) == expected)
    }

    @Test("CRC32C hardware and table paths agree on every length and alignment, and chain across calls")
    func crc32cPathsAgree() {
        var random = SystemRandomNumberGenerator()
        let data = (0..<4200).map { _ in UInt8.random(in: 0...255, using: &random) }
        for length in [0, 1, 7, 8, 9, 63, 64, 65, 1000, 4095] {
            for start in 0..<8 {
                let slice = Array(data[start..<(start + length)])
                #expect(CRC32C.checksum(slice) == CRC32C.softwareChecksum(slice))
            }
        }
        let whole = CRC32C.checksum(data)
        let chained = data.withUnsafeBytes { bytes in
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[1000...]), continuing: CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[..<1000])))
        }
        #expect(whole == chained)
    }

    // FIPS 180-4 / NIST CAVP examples.
    @Test("SHA-256 matches the FIPS 180-4 examples", arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        ("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
    ])
    func sha256Vectors(text: String, expected: String) {
        #expect(SHA256.hash(Array(text.utf8)).hex == expected)
        var software = SHA256.software()
        software.update(Array(text.utf8))
        #expect(software.finalize().hex == expected)
    }

    @Test("SHA-256 of a million 'a' (FIPS 180-4), fed in uneven pieces")
    func sha256MillionA() {
        var hasher = SHA256()
        let piece = [UInt8](repeating: UInt8(ascii: "a"), count: 999)
        var fed = 0
        while fed < 1_000_000 {
            let count = min(piece.count, 1_000_000 - fed)
            hasher.update(Array(piece.prefix(count)))
            fed += count
        }
        #expect(hasher.finalize().hex == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test("SHA-256 hardware and portable paths agree on every length up to 300 bytes")
    func sha256PathsAgree() {
        var random = SystemRandomNumberGenerator()
        for length in 0...300 {
            let data = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            var software = SHA256.software()
            software.update(data)
            #expect(SHA256.hash(data) == software.finalize())
        }
    }

    @Test("digests round-trip through hex and bytes")
    func digestConversions() {
        let digest = SHA256.hash(Array("abc".utf8))
        #expect(SHA256Digest(hex: digest.hex) == digest)
        #expect(SHA256Digest(bytes: digest.bytes) == digest)
        #expect(SHA256Digest(hex: "zz") == nil)
        #expect(SHA256Digest.zero.hex == String(repeating: "0", count: 64))
    }
}

@Suite("HMAC-SHA256 against RFC 4231")
struct HMACTests {
    static func hex(_ text: String) -> [UInt8] {
        stride(from: 0, to: text.count, by: 2).map { index in
            let start = text.index(text.startIndex, offsetBy: index)
            return UInt8(text[start..<text.index(start, offsetBy: 2)], radix: 16)!
        }
    }

    @Test("RFC 4231 test cases 1, 2, 3, 4, 6 and 7", arguments: [
        ("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", Array("Hi There".utf8), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        ("4a656665", Array("what do ya want for nothing?".utf8), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", [UInt8](repeating: 0xDD, count: 50), "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        ("0102030405060708090a0b0c0d0e0f10111213141516171819", [UInt8](repeating: 0xCD, count: 50), "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
        (String(repeating: "aa", count: 131), Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        (String(repeating: "aa", count: 131), Array("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".utf8), "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
    ])
    func vectors(key: String, message: [UInt8], expected: String) {
        #expect(HMACSHA256.authenticate(message, key: Self.hex(key)).hex == expected)
    }

    @Test("constant-time comparison tells equal from different codes")
    func comparison() {
        let a = HMACSHA256.authenticate([1], key: [2])
        #expect(HMACSHA256.constantTimeEqual(a, a))
        #expect(!HMACSHA256.constantTimeEqual(a, HMACSHA256.authenticate([1], key: [3])))
    }
}
