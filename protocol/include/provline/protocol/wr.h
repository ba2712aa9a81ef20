/* Bounded writer: into a caller buffer (fixed) or a growable heap buffer with a
 * hard maximum. Errors are sticky: after the first failure every write is a no-op
 * and pl_wr_status() reports the first error, so encoders check once at the end. */
#ifndef PROVLINE_PROTOCOL_WR_H
#define PROVLINE_PROTOCOL_WR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "provline/protocol/err.h"

struct pl_wr {
    uint8_t *buf;
    size_t len;   /* bytes written */
    size_t cap;   /* bytes allocated */
    size_t max;   /* hard maximum */
    int err;      /* first error, sticky */
    bool dynamic; /* buf is heap memory owned by the writer */
};

/* Writes into buf (borrowed) of cap bytes. */
void pl_wr_init_fixed(struct pl_wr *w, uint8_t *buf, size_t cap);
/* Growable heap buffer up to max bytes. Free with pl_wr_free(). */
void pl_wr_init_dyn(struct pl_wr *w, size_t max);
/* Zeroises and frees a dynamic buffer (no-op for fixed); the writer becomes empty. */
void pl_wr_free(struct pl_wr *w);
/* Empties the writer (zeroising what was written), keeping its buffer. */
void pl_wr_reset(struct pl_wr *w);
/* Detaches the dynamic buffer: returns owned memory (free with free()), len in *len.
 * Returns NULL on a failed writer or an empty buffer (then *len = 0). */
uint8_t *pl_wr_take(struct pl_wr *w, size_t *len);

PL_MUST_CHECK int pl_wr_status(const struct pl_wr *w);
int pl_wr_u8(struct pl_wr *w, uint8_t v);
int pl_wr_u16be(struct pl_wr *w, uint16_t v);
int pl_wr_u32be(struct pl_wr *w, uint32_t v);
int pl_wr_u64be(struct pl_wr *w, uint64_t v);
/* Copies n bytes (src may be NULL when n == 0). */
int pl_wr_bytes(struct pl_wr *w, const void *src, size_t n);
/* Reserves n bytes and returns a pointer to them (NULL on failure). The pointer is
 * valid until the next write. */
uint8_t *pl_wr_reserve(struct pl_wr *w, size_t n);
/* Opens a gap of n bytes at offset off (moving the tail); used to back-patch lengths. */
int pl_wr_insert_gap(struct pl_wr *w, size_t off, size_t n);
/* Marks the writer failed with err (if it had not failed yet). */
void pl_wr_fail(struct pl_wr *w, int err);

#endif
