#ifndef CHATLEDGER_CHECKSUMS_H
#define CHATLEDGER_CHECKSUMS_H

#include <stddef.h>
#include <stdint.h>

/// CRC32C (Castagnoli, reflected polynomial 0x82F63B78). `crc` is the value so far
/// (0 to start); returns the value after `data`, so calls can be chained.
/// Uses the SSE4.2 instruction when the CPU has it, a table otherwise.
uint32_t cl_crc32c(uint32_t crc, const void *data, size_t length);

/// The table-driven CRC32C, for tests that compare both paths.
uint32_t cl_crc32c_software(uint32_t crc, const void *data, size_t length);

/// 1 when `cl_crc32c` uses the CPU's instruction.
int cl_crc32c_is_hardware(void);

/// SHA-256 (FIPS 180-4) state.
typedef struct {
    uint32_t state[8];
    uint64_t length;      /* bytes hashed so far */
    uint8_t buffer[64];
    size_t buffered;
    int use_hardware;
} cl_sha256_context;

void cl_sha256_init(cl_sha256_context *context);
/// Like `cl_sha256_init`, but never uses the CPU's SHA extensions (for tests).
void cl_sha256_init_software(cl_sha256_context *context);
void cl_sha256_update(cl_sha256_context *context, const void *data, size_t length);
void cl_sha256_final(cl_sha256_context *context, uint8_t digest[32]);

/// 1 when SHA-256 uses the CPU's SHA extensions.
int cl_sha256_is_hardware(void);

#endif
