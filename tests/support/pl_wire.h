/* A deterministic lossy byte wire for link tests (one direction): drops, corrupts, duplicates,
 * delays and splits what is written, driven by a seeded PRNG, in FIFO order like a serial line.
 * Time is whatever the test says it is. Never linked into a product. */
#ifndef PL_WIRE_H
#define PL_WIRE_H

#include <stddef.h>
#include <stdint.h>

struct pl_wire_cfg {
    uint64_t seed;
    unsigned drop_permille;    /* a write is lost whole */
    unsigned corrupt_permille; /* a write gets 1..3 bytes XORed with random non-zero values */
    unsigned dup_permille;     /* a write arrives twice */
    unsigned noise_permille;   /* 1..16 random bytes are injected after a write */
    unsigned max_delay_ms;     /* each write is due at now + [0, max_delay_ms], FIFO kept */
    unsigned max_chunk;        /* due bytes are handed over in pieces of 1..max_chunk (0: whole) */
};

struct pl_wire_stats {
    uint64_t writes, bytes, dropped, corrupted, duplicated, noise;
};

struct pl_wire;

/* NULL on allocation failure. */
struct pl_wire *pl_wire_new(const struct pl_wire_cfg *cfg);
void pl_wire_free(struct pl_wire *w);
/* The time used for writes from now on. */
void pl_wire_set_now(struct pl_wire *w, uint64_t now_ms);
/* When cut is non-zero every write is lost (a pulled cable). */
void pl_wire_cut(struct pl_wire *w, int cut);
/* Write callback (user = the wire). Always returns 0. */
int pl_wire_write(void *wire, const uint8_t *buf, size_t len);
/* Hands every byte due at or before now to sink, in random pieces; stops at the first non-zero
 * return of sink and returns it, else 0. */
int pl_wire_pump(struct pl_wire *w, uint64_t now_ms,
                 int (*sink)(void *user, const uint8_t *buf, size_t len), void *user);
/* Bytes still travelling. */
size_t pl_wire_in_flight(const struct pl_wire *w);
/* Earliest time at which bytes are due (UINT64_MAX when empty). */
uint64_t pl_wire_next_due(const struct pl_wire *w);
void pl_wire_get_stats(const struct pl_wire *w, struct pl_wire_stats *st);

#endif
