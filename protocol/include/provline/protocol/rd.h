/* Bounds-checked reader over untrusted bytes (STYLE.md §7.3 rule 3).
 * Every read either succeeds completely and advances, or fails and leaves the
 * cursor where it was. No other code does pointer arithmetic on input. */
#ifndef PROVLINE_PROTOCOL_RD_H
#define PROVLINE_PROTOCOL_RD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "provline/protocol/err.h"

struct pl_rd {
    const uint8_t *p; /* borrowed; never written */
    size_t len;
    size_t pos;
};

/* Borrows p for the reader's lifetime. p may be NULL when len is 0. */
void pl_rd_init(struct pl_rd *r, const uint8_t *p, size_t len);
size_t pl_rd_left(const struct pl_rd *r);
bool pl_rd_done(const struct pl_rd *r);
/* Pointer to the current position (valid for pl_rd_left() bytes). */
const uint8_t *pl_rd_ptr(const struct pl_rd *r);

PL_MUST_CHECK int pl_rd_u8(struct pl_rd *r, uint8_t *out);
PL_MUST_CHECK int pl_rd_u16be(struct pl_rd *r, uint16_t *out);
PL_MUST_CHECK int pl_rd_u32be(struct pl_rd *r, uint32_t *out);
PL_MUST_CHECK int pl_rd_u64be(struct pl_rd *r, uint64_t *out);
/* Borrows n bytes: *out points into the reader's buffer. */
PL_MUST_CHECK int pl_rd_bytes(struct pl_rd *r, size_t n, const uint8_t **out);
/* Copies n bytes into dst. */
PL_MUST_CHECK int pl_rd_copy(struct pl_rd *r, void *dst, size_t n);
PL_MUST_CHECK int pl_rd_skip(struct pl_rd *r, size_t n);
/* A child reader over the next n bytes; the parent advances past them. The child
 * cannot read beyond those n bytes. */
PL_MUST_CHECK int pl_rd_sub(struct pl_rd *r, size_t n, struct pl_rd *sub);
/* Peek without advancing. */
PL_MUST_CHECK int pl_rd_peek_u8(const struct pl_rd *r, uint8_t *out);

#endif
