/* Fuzz target: the SGP.22 BoundProfilePackage codec (protocol/src/bpp.c). Every input must be
 * rejected with an error or decode; a decoded structure must re-encode to exactly the input
 * (strict DER has one encoding) and its ES10b segments must cover it exactly. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "provline/protocol/bpp.h"
#include "provline/protocol/wr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const struct pl_wr *w, int rc, const uint8_t *buf, size_t size)
{
    if (rc != PL_OK || w->len != size || (size && memcmp(w->buf, buf, size) != 0))
        abort();
}

static void check_bpp(const uint8_t *buf, size_t size, struct pl_bpp *b)
{
    struct pl_wr w;
    static struct pl_bpp_span spans[PL_BPP_MAX_SEGMENTS];
    size_t n = 0, off = 0;

    pl_wr_init_dyn(&w, size + 64);
    same(&w, pl_bpp_encode(b, &w), buf, size);
    pl_wr_free(&w);
    if (pl_bpp_segments(b, spans, PL_BPP_MAX_SEGMENTS, &n) != PL_OK)
        abort();
    if (n != pl_bpp_segment_count(b))
        abort();
    for (size_t i = 0; i < n; i++) {
        if (spans[i].off != off || spans[i].len == 0)
            abort();
        off += spans[i].len;
    }
    if (off != size)
        abort();
    /* The smdpSign data can always be built from a decoded ISCR. */
    uint8_t otpk[65] = {0x04};
    pl_wr_init_dyn(&w, 512);
    if (pl_bpp_iscr_signed_data(&b->iscr, otpk, &w) != PL_OK)
        abort();
    pl_wr_free(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1); /* exact bounds for ASan */
    struct pl_bpp *b = malloc(sizeof(*b));
    struct pl_wr w;
    if (!buf || !b) {
        free(buf);
        free(b);
        return 0;
    }
    if (size)
        memcpy(buf, data, size);

    if (pl_bpp_decode(buf, size, b) == PL_OK)
        check_bpp(buf, size, b);

    struct pl_iscr i;
    if (pl_iscr_decode(buf, size, &i) == PL_OK) {
        pl_wr_init_dyn(&w, size + 16);
        same(&w, pl_iscr_encode(&i, &w), buf, size);
        pl_wr_free(&w);
    }
    struct pl_configure_isdp c;
    if (pl_configure_isdp_decode(buf, size, &c) == PL_OK) {
        pl_wr_init_dyn(&w, size + 16);
        same(&w, pl_configure_isdp_encode(&c, &w), buf, size);
        pl_wr_free(&w);
    }
    struct pl_smr s;
    if (pl_smr_decode(buf, size, &s) == PL_OK) {
        pl_wr_init_dyn(&w, size + 16);
        same(&w, pl_smr_encode(&s, &w), buf, size);
        pl_wr_free(&w);
    }
    struct pl_rsk k;
    if (pl_rsk_decode(buf, size, &k) == PL_OK) {
        pl_wr_init_dyn(&w, size + 16);
        same(&w, pl_rsk_encode(&k, &w), buf, size);
        pl_wr_free(&w);
    }
    free(b);
    free(buf);
    return 0;
}
