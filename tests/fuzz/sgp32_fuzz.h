/* Shared checks for the SGP.32 fuzz targets (header-only; never linked into a product).
 * The property: whatever a decoder accepts, its encoder must encode; decoding that encoding
 * must succeed and re-encode to the very same bytes (encode . decode is idempotent). Any
 * violation aborts, which libFuzzer and the replay driver report as a crash. */
#ifndef PL_FUZZ_SGP32_H
#define PL_FUZZ_SGP32_H

#include "provline/protocol/der.h"
#include "provline/protocol/sgp32_common.h"
#include "provline/protocol/wr.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SGP32_FUZZ_WR_MAX (1u << 20)

typedef int (*sgp32_dec_fn)(const uint8_t *, size_t, void *);
typedef int (*sgp32_enc_fn)(const void *, struct pl_wr *);

/* obj holds a successful decode of some input (size bytes of scratch at obj2). */
static inline void sgp32_fuzz_idempotent(const void *obj, void *obj2, sgp32_dec_fn dec,
                                         sgp32_enc_fn enc)
{
    struct pl_wr w1, w2;
    pl_wr_init_dyn(&w1, SGP32_FUZZ_WR_MAX);
    pl_wr_init_dyn(&w2, SGP32_FUZZ_WR_MAX);
    if (enc(obj, &w1) != PL_OK)
        abort(); /* accepted on input but refused on output */
    if (dec(w1.buf, w1.len, obj2) != PL_OK)
        abort(); /* our own encoding does not decode */
    if (enc(obj2, &w2) != PL_OK)
        abort();
    if (w1.len != w2.len || memcmp(w1.buf, w2.buf, w1.len) != 0)
        abort(); /* not canonical */
    pl_wr_free(&w1);
    pl_wr_free(&w2);
}

/* Walks a list view; every element must come back as a TLV inside the list. */
static inline void sgp32_fuzz_walk(const struct pl_sgp32_list *l)
{
    struct pl_sgp32_iter it;
    struct pl_tlv t;
    size_t n = 0;
    if (l->p == NULL)
        return;
    pl_sgp32_iter_init(&it, l);
    while (pl_sgp32_iter_next(&it, &t) == PL_OK) {
        if (t.raw < l->p || t.raw + t.raw_len > l->p + l->len)
            abort();
        n++;
    }
    if (n != l->count)
        abort();
}

#endif
