#ifndef CHATLEDGER_INTRINSICS_H
#define CHATLEDGER_INTRINSICS_H

/* Compiler intrinsics Swift cannot spell, for the projection's hot paths. */

/* A hint that `address` will be read soon: the cache line is fetched while other work
   runs (the event-id window's table is far larger than the caches). */
static inline void cl_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }

#endif
