#include "CLedgerChecksums.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

static uint32_t crc_table[256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

static void build_crc_table(void) {
    for (uint32_t byte = 0; byte < 256; byte++) {
        uint32_t crc = byte;
        for (int bit = 0; bit < 8; bit++) {
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
        }
        crc_table[byte] = crc;
    }
}

uint32_t cl_crc32c_software(uint32_t crc, const void *data, size_t length) {
    pthread_once(&crc_table_once, build_crc_table);
    const uint8_t *bytes = data;
    crc = ~crc;
    while (length--) {
        crc = crc_table[(crc ^ *bytes++) & 0xFF] ^ (crc >> 8);
    }
    return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc32c_hardware(uint32_t crc, const void *data, size_t length) {
    const uint8_t *bytes = data;
    uint64_t value = ~crc & 0xFFFFFFFFu;
    while (length > 0 && ((uintptr_t)bytes & 7) != 0) {
        value = _mm_crc32_u8((uint32_t)value, *bytes++);
        length--;
    }
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, bytes, 8);
        value = _mm_crc32_u64(value, word);
        bytes += 8;
        length -= 8;
    }
    while (length--) {
        value = _mm_crc32_u8((uint32_t)value, *bytes++);
    }
    return ~(uint32_t)value;
}
#endif

int cl_crc32c_is_hardware(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") ? 1 : 0;
#else
    return 0;
#endif
}

uint32_t cl_crc32c(uint32_t crc, const void *data, size_t length) {
#if defined(__x86_64__)
    static int hardware = -1;
    if (hardware < 0) hardware = cl_crc32c_is_hardware();  /* idempotent; a race writes the same value */
    if (hardware) return crc32c_hardware(crc, data, length);
#endif
    return cl_crc32c_software(crc, data, length);
}
