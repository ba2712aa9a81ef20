/* Bounds-checked reader: the only place that does pointer arithmetic on input
 * (STYLE.md §7.3 rule 3). */
#include "provline/protocol/rd.h"

#include <string.h>

void pl_rd_init(struct pl_rd *r, const uint8_t *p, size_t len)
{
    r->p = p;
    r->len = p ? len : 0;
    r->pos = 0;
}

size_t pl_rd_left(const struct pl_rd *r)
{
    return r->len - r->pos;
}

bool pl_rd_done(const struct pl_rd *r)
{
    return r->pos >= r->len;
}

const uint8_t *pl_rd_ptr(const struct pl_rd *r)
{
    return r->p ? r->p + r->pos : NULL;
}

int pl_rd_peek_u8(const struct pl_rd *r, uint8_t *out)
{
    if (pl_rd_left(r) < 1)
        return PL_ERR_TRUNCATED;
    *out = r->p[r->pos];
    return PL_OK;
}

int pl_rd_u8(struct pl_rd *r, uint8_t *out)
{
    if (pl_rd_left(r) < 1)
        return PL_ERR_TRUNCATED;
    *out = r->p[r->pos++];
    return PL_OK;
}

static int rd_be(struct pl_rd *r, size_t n, uint64_t *out)
{
    if (pl_rd_left(r) < n)
        return PL_ERR_TRUNCATED;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | r->p[r->pos + i];
    r->pos += n;
    *out = v;
    return PL_OK;
}

int pl_rd_u16be(struct pl_rd *r, uint16_t *out)
{
    uint64_t v;
    int rc = rd_be(r, 2, &v);
    if (rc == PL_OK)
        *out = (uint16_t)v;
    return rc;
}

int pl_rd_u32be(struct pl_rd *r, uint32_t *out)
{
    uint64_t v;
    int rc = rd_be(r, 4, &v);
    if (rc == PL_OK)
        *out = (uint32_t)v;
    return rc;
}

int pl_rd_u64be(struct pl_rd *r, uint64_t *out)
{
    return rd_be(r, 8, out);
}

int pl_rd_bytes(struct pl_rd *r, size_t n, const uint8_t **out)
{
    if (pl_rd_left(r) < n)
        return PL_ERR_TRUNCATED;
    *out = r->p ? r->p + r->pos : NULL;
    r->pos += n;
    return PL_OK;
}

int pl_rd_copy(struct pl_rd *r, void *dst, size_t n)
{
    if (pl_rd_left(r) < n)
        return PL_ERR_TRUNCATED;
    if (n)
        memcpy(dst, r->p + r->pos, n);
    r->pos += n;
    return PL_OK;
}

int pl_rd_skip(struct pl_rd *r, size_t n)
{
    if (pl_rd_left(r) < n)
        return PL_ERR_TRUNCATED;
    r->pos += n;
    return PL_OK;
}

int pl_rd_sub(struct pl_rd *r, size_t n, struct pl_rd *sub)
{
    if (pl_rd_left(r) < n)
        return PL_ERR_TRUNCATED;
    pl_rd_init(sub, r->p ? r->p + r->pos : NULL, n);
    r->pos += n;
    return PL_OK;
}
