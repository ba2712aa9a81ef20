/* Bounded writer with sticky errors. */
#include "provline/protocol/wr.h"

#include <stdlib.h>
#include <string.h>

#include "provline/protocol/secret.h"

void pl_wr_init_fixed(struct pl_wr *w, uint8_t *buf, size_t cap)
{
    w->buf = buf;
    w->len = 0;
    w->cap = buf ? cap : 0;
    w->max = w->cap;
    w->err = PL_OK;
    w->dynamic = false;
}

void pl_wr_init_dyn(struct pl_wr *w, size_t max)
{
    w->buf = NULL;
    w->len = 0;
    w->cap = 0;
    w->max = max;
    w->err = PL_OK;
    w->dynamic = true;
}

void pl_wr_free(struct pl_wr *w)
{
    if (w->dynamic && w->buf) {
        pl_memzero(w->buf, w->cap);
        free(w->buf);
        w->buf = NULL;
        w->cap = 0;
    }
    w->len = 0;
}

void pl_wr_reset(struct pl_wr *w)
{
    if (w->buf)
        pl_memzero(w->buf, w->len);
    w->len = 0;
    w->err = PL_OK;
}

uint8_t *pl_wr_take(struct pl_wr *w, size_t *len)
{
    *len = 0;
    if (!w->dynamic || w->err != PL_OK || !w->buf || w->len == 0)
        return NULL;
    uint8_t *p = w->buf;
    *len = w->len;
    w->buf = NULL;
    w->cap = 0;
    w->len = 0;
    return p;
}

int pl_wr_status(const struct pl_wr *w)
{
    return w->err;
}

void pl_wr_fail(struct pl_wr *w, int err)
{
    if (w->err == PL_OK)
        w->err = err;
}

/* Makes room for n more bytes. */
static int wr_grow(struct pl_wr *w, size_t n)
{
    if (w->err != PL_OK)
        return w->err;
    if (n > w->max || w->len > w->max - n) {
        pl_wr_fail(w, PL_ERR_OVERFLOW);
        return w->err;
    }
    size_t need = w->len + n;
    if (need <= w->cap)
        return PL_OK;
    if (!w->dynamic) {
        pl_wr_fail(w, PL_ERR_OVERFLOW);
        return w->err;
    }
    size_t ncap = w->cap ? w->cap : 64;
    while (ncap < need)
        ncap = ncap > w->max / 2 ? w->max : ncap * 2;
    /* Not realloc: the old buffer may hold secrets and must be wiped. */
    uint8_t *nb = malloc(ncap);
    if (!nb) {
        pl_wr_fail(w, PL_ERR_NOMEM);
        return w->err;
    }
    if (w->buf) {
        memcpy(nb, w->buf, w->len);
        pl_memzero(w->buf, w->cap);
        free(w->buf);
    }
    w->buf = nb;
    w->cap = ncap;
    return PL_OK;
}

uint8_t *pl_wr_reserve(struct pl_wr *w, size_t n)
{
    if (wr_grow(w, n) != PL_OK)
        return NULL;
    uint8_t *p = w->buf + w->len;
    w->len += n;
    return p;
}

int pl_wr_bytes(struct pl_wr *w, const void *src, size_t n)
{
    if (n == 0)
        return w->err;
    uint8_t *p = pl_wr_reserve(w, n);
    if (!p)
        return w->err;
    memcpy(p, src, n);
    return PL_OK;
}

int pl_wr_u8(struct pl_wr *w, uint8_t v)
{
    return pl_wr_bytes(w, &v, 1);
}

static int wr_be(struct pl_wr *w, uint64_t v, size_t n)
{
    uint8_t b[8];
    for (size_t i = 0; i < n; i++)
        b[n - 1 - i] = (uint8_t)(v >> (8 * i));
    return pl_wr_bytes(w, b, n);
}

int pl_wr_u16be(struct pl_wr *w, uint16_t v)
{
    return wr_be(w, v, 2);
}

int pl_wr_u32be(struct pl_wr *w, uint32_t v)
{
    return wr_be(w, v, 4);
}

int pl_wr_u64be(struct pl_wr *w, uint64_t v)
{
    return wr_be(w, v, 8);
}

int pl_wr_insert_gap(struct pl_wr *w, size_t off, size_t n)
{
    if (w->err != PL_OK)
        return w->err;
    if (off > w->len) {
        pl_wr_fail(w, PL_ERR_INVAL);
        return w->err;
    }
    if (n == 0)
        return PL_OK;
    if (wr_grow(w, n) != PL_OK)
        return w->err;
    memmove(w->buf + off + n, w->buf + off, w->len - off);
    memset(w->buf + off, 0, n);
    w->len += n;
    return PL_OK;
}
