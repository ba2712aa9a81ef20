/* Fuzz target: the strict DER reader (pl_der_validate and a manual walk, and the GetEID
 * answer decoder on top of it). Any input
 * must either be rejected with an error or walk without touching memory outside it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "provline/protocol/der.h"
#include "provline/protocol/es10c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(struct pl_der *d)
{
    while (!pl_der_done(d)) {
        struct pl_tlv t;
        if (pl_der_next(d, &t) != PL_OK)
            return;
        int64_t i;
        uint64_t u;
        bool b;
        char s[64];
        const uint8_t *p;
        size_t n;
        unsigned unused;
        int sink = pl_der_get_int(&t, &i);
        sink |= pl_der_get_uint(&t, &u);
        sink |= pl_der_get_bool(&t, &b);
        sink |= pl_der_get_utf8(&t, s, sizeof(s));
        sink |= pl_der_get_bits(&t, &p, &n, &unused);
        sink |= pl_der_check_oid(&t);
        (void)sink;
        if (t.raw + t.raw_len != t.value + t.len)
            abort(); /* contents must end where the TLV ends */
        if (t.constructed) {
            struct pl_der c;
            if (pl_der_enter(d, &t, &c) == PL_OK)
                walk(&c);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Copy so ASan sees the exact bounds. */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    int rc = pl_der_validate(buf, size, 0);
    struct pl_der d;
    pl_der_init(&d, buf, size);
    walk(&d);
    /* The smallest DER consumer of card answers: ES10c.GetEID (FPA and IPA). An accepted
     * answer is a valid DER TLV. */
    uint8_t eid[PL_ES10C_EID_LEN];
    if (pl_es10c_get_eid_rsp_decode(buf, size, eid) == PL_OK && rc != PL_OK)
        abort();
    if (rc == PL_OK) {
        /* Re-encoding the outer header must give the same bytes (DER is canonical). */
        struct pl_tlv t;
        if (pl_der_parse_one(buf, size, 0, &t) != PL_OK)
            abort();
        struct pl_wr w;
        pl_wr_init_dyn(&w, size + 16);
        (void)pl_der_put_tlv(&w, t.tag, t.value, t.len);
        if (pl_wr_status(&w) != PL_OK || w.len != size || memcmp(w.buf, buf, size) != 0)
            abort();
        pl_wr_free(&w);
    }
    free(buf);
    return 0;
}
