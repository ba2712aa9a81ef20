/* SGP.32 codec helpers: strict component reading for AUTOMATIC TAGS / EXTENSIBILITY
 * IMPLIED SEQUENCEs, typed primitive getters, encoders, list views, and the signature input
 * of GSMA SGP.32 v1.2 §2.11.1.1 ("euiccPackageSigned concatenated with associationToken,
 * '84 01 00' if none is configured"; the eUICC signs its results the same way, §2.11.2.1).
 * Signatures are ECDSA-SHA256, emitted as r||s (BSI TR-03111); DER is accepted on input. */
#include "provline/protocol/sgp32_common.h"

#include "provline/protocol/crypto.h"
#include "provline/protocol/der.h"
#include "sgp32_internal.h"

#include <string.h>

/* ---- list views ---- */

void pl_sgp32_iter_init(struct pl_sgp32_iter *it, const struct pl_sgp32_list *l)
{
    pl_der_init(&it->d, l->p, l->p ? l->len : 0);
}

int pl_sgp32_iter_next(struct pl_sgp32_iter *it, struct pl_tlv *item)
{
    if (pl_der_done(&it->d))
        return PL_ERR_NOT_FOUND;
    return pl_der_next(&it->d, item);
}

bool pl_sgp32_buf_eq(struct pl_sgp32_buf a, struct pl_sgp32_buf b)
{
    if ((a.p == NULL) != (b.p == NULL))
        return false;
    if (a.p == NULL)
        return true;
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

int pl_sgp32_token_tlv(const int64_t *token, uint8_t out[PL_SGP32_TOKEN_TLV_MAX], size_t *out_len)
{
    struct pl_wr w;
    if (out == NULL || out_len == NULL)
        return PL_ERR_INVAL;
    pl_wr_init_fixed(&w, out, PL_SGP32_TOKEN_TLV_MAX);
    (void)pl_der_put_int(&w, 0x84u, token ? *token : 0);
    int rc = pl_wr_status(&w);
    if (rc)
        return rc;
    *out_len = w.len;
    return PL_OK;
}

/* ---- decoding ---- */

int pl_sgp32i_next(struct pl_der *d, struct pl_tlv *tlv)
{
    if (pl_der_done(d))
        return PL_ERR_MALFORMED;
    return pl_der_next(d, tlv);
}

int pl_sgp32i_expect(struct pl_der *d, uint32_t tag, struct pl_tlv *tlv)
{
    if (pl_der_done(d))
        return PL_ERR_MALFORMED;
    return pl_der_expect(d, tag, tlv);
}

int pl_sgp32i_optional(struct pl_der *d, uint32_t tag, struct pl_tlv *tlv, bool *present)
{
    return pl_der_optional(d, tag, tlv, present);
}

int pl_sgp32i_enter(const struct pl_der *parent, const struct pl_tlv *tlv, struct pl_der *child)
{
    return pl_der_enter(parent, tlv, child);
}

/* Depth budget left below a reader (never 0, which pl_der_validate reads as "default"). */
static unsigned depth_left(const struct pl_der *d)
{
    return d->max_depth > d->depth ? d->max_depth - d->depth : 1u;
}

/* Class (0 universal, 1 application, 2 context, 3 private) and number of a tag held as its
 * identifier octets (der.h). */
static void tag_split(uint32_t tag, unsigned *cls, uint32_t *number)
{
    unsigned n = pl_der_tag_size(tag);
    uint32_t first = n > 1 ? tag >> (8 * (n - 1)) : tag;
    *cls = (unsigned)(first >> 6) & 3u;
    if (n <= 1) {
        *number = first & 0x1Fu;
        return;
    }
    uint32_t v = 0;
    for (unsigned i = n - 1; i > 0; i--)
        v = (v << 7) | ((tag >> (8 * (i - 1))) & 0x7Fu);
    *number = v;
}

int pl_sgp32i_seq_end(struct pl_der *d, const uint32_t *known, size_t n_known)
{
    /* Extension additions (X.680 §25, EXTENSIBILITY IMPLIED) follow the root components
     * and, in the SGP modules, carry context tags with numbers of their own. Only those are
     * skipped; anything else left over (another class, or a context number a root component
     * uses: a duplicate, a component out of order, a primitive/constructed mix-up) is an
     * error. */
    while (!pl_der_done(d)) {
        struct pl_tlv t;
        unsigned cls;
        uint32_t num;
        int rc = pl_der_next(d, &t);
        if (rc)
            return rc;
        tag_split(t.tag, &cls, &num);
        if (cls != 2)
            return PL_ERR_DER_TAG;
        for (size_t i = 0; i < n_known; i++) {
            unsigned kcls;
            uint32_t knum;
            tag_split(known[i], &kcls, &knum);
            if (kcls == 2 && knum == num)
                return PL_ERR_DER_TAG;
        }
        if (t.constructed && (rc = pl_der_validate(t.raw, t.raw_len, depth_left(d))))
            return rc;
    }
    return PL_OK;
}

int pl_sgp32i_explicit_inner(const struct pl_der *parent, const struct pl_tlv *outer,
                             struct pl_tlv *inner)
{
    struct pl_der c;
    int rc = pl_der_enter(parent, outer, &c);
    if (rc)
        return rc;
    if ((rc = pl_sgp32i_next(&c, inner)))
        return rc;
    return pl_der_finish(&c);
}

struct pl_sgp32_buf pl_sgp32i_raw(const struct pl_tlv *t)
{
    struct pl_sgp32_buf b = {t->raw, t->raw_len};
    return b;
}

struct pl_sgp32_buf pl_sgp32i_value(const struct pl_tlv *t)
{
    struct pl_sgp32_buf b = {t->value, t->len};
    return b;
}

int pl_sgp32i_get_utf8(const struct pl_tlv *t, size_t min, size_t max, struct pl_sgp32_buf *out)
{
    if (t->constructed)
        return PL_ERR_DER_TAG;
    if (t->len < min || t->len > max || !pl_der_utf8_valid(t->value, t->len))
        return PL_ERR_DER_VALUE;
    *out = pl_sgp32i_value(t);
    return PL_OK;
}

int pl_sgp32i_get_octets(const struct pl_tlv *t, size_t min, size_t max, struct pl_sgp32_buf *out)
{
    const uint8_t *p;
    size_t n;
    int rc = pl_der_get_octets(t, min, max, &p, &n);
    if (rc)
        return rc;
    out->p = p;
    out->len = n;
    return PL_OK;
}

int pl_sgp32i_get_fixed(const struct pl_tlv *t, uint8_t *out, size_t n)
{
    return pl_der_get_fixed(t, out, n);
}

int pl_sgp32i_get_int(const struct pl_tlv *t, int64_t *out)
{
    if (t->constructed)
        return PL_ERR_DER_TAG;
    int rc = pl_der_get_int(t, out);
    return rc == PL_ERR_OVERFLOW ? PL_ERR_DER_VALUE : rc;
}

int pl_sgp32i_get_u31(const struct pl_tlv *t, uint32_t *out)
{
    int64_t v;
    int rc = pl_sgp32i_get_int(t, &v);
    if (rc)
        return rc;
    if (v < 0 || v > (int64_t)PL_SGP32_COUNTER_MAX)
        return PL_ERR_DER_VALUE;
    *out = (uint32_t)v;
    return PL_OK;
}

int pl_sgp32i_get_null(const struct pl_tlv *t)
{
    if (t->constructed)
        return PL_ERR_DER_TAG;
    return pl_der_get_null(t);
}

int pl_sgp32i_get_bits(const struct pl_tlv *t, uint32_t *mask)
{
    const uint8_t *bits;
    size_t nbytes;
    unsigned unused;
    if (t->constructed)
        return PL_ERR_DER_TAG;
    int rc = pl_der_get_bits(t, &bits, &nbytes, &unused);
    if (rc)
        return rc;
    uint32_t m = 0;
    for (size_t i = 0; i < nbytes; i++) {
        if (i >= 4) {
            if (bits[i] != 0)
                return PL_ERR_DER_VALUE; /* a named bit past 31: not in any SGP.32 type */
            continue;
        }
        for (unsigned b = 0; b < 8; b++) {
            if (bits[i] & (0x80u >> b))
                m |= 1u << (i * 8 + b);
        }
    }
    *mask = m;
    return PL_OK;
}

int pl_sgp32i_get_oid(const struct pl_tlv *t, struct pl_sgp32_buf *out)
{
    int rc = pl_der_check_oid(t);
    if (rc)
        return rc;
    *out = pl_sgp32i_value(t);
    return PL_OK;
}

int pl_sgp32i_get_list(const struct pl_der *parent, const struct pl_tlv *t, const uint32_t *tags,
                       size_t n_tags, size_t cap, struct pl_sgp32_list *out)
{
    struct pl_der c;
    int rc = pl_der_enter(parent, t, &c);
    if (rc)
        return rc;
    size_t count = 0;
    while (!pl_der_done(&c)) {
        struct pl_tlv e;
        if ((rc = pl_der_next(&c, &e)))
            return rc;
        bool ok = n_tags == 0;
        for (size_t i = 0; i < n_tags; i++) {
            if (tags[i] == e.tag)
                ok = true;
        }
        if (!ok)
            return PL_ERR_DER_TAG;
        if (e.constructed && (rc = pl_der_validate(e.raw, e.raw_len, depth_left(&c))))
            return rc;
        if (++count > cap)
            return PL_ERR_OVERFLOW;
    }
    out->p = t->value;
    out->len = t->len;
    out->count = count;
    return PL_OK;
}

int pl_sgp32i_check_x509_body(const uint8_t *p, size_t len, bool cert)
{
    static const uint32_t spki[] = {PL_TAG_SEQUENCE, PL_TAG_BIT_STRING};
    static const uint32_t crt[] = {PL_TAG_SEQUENCE, PL_TAG_SEQUENCE, PL_TAG_BIT_STRING};
    const uint32_t *want = cert ? crt : spki;
    size_t n = cert ? 3 : 2;
    struct pl_der d;
    int rc;

    if (p == NULL)
        return PL_ERR_INVAL;
    pl_der_init(&d, p, len);
    for (size_t i = 0; i < n; i++) {
        struct pl_tlv t;
        if ((rc = pl_sgp32i_expect(&d, want[i], &t)))
            return rc;
        if (t.constructed && (rc = pl_der_validate(t.raw, t.raw_len, 0)))
            return rc;
    }
    return pl_der_finish(&d);
}

int pl_sgp32i_x509_body(const struct pl_der *parent, const struct pl_tlv *t, bool cert,
                        struct pl_sgp32_buf *body)
{
    struct pl_der a, probe;
    struct pl_tlv inner;
    int rc;

    if ((rc = pl_der_enter(parent, t, &a)))
        return rc;
    *body = pl_sgp32i_value(t);
    /* Tolerated reading (OpenIoTRSP): t holds one complete '30' TLV. Unambiguous, since
     * the implicit contents always hold two or three TLVs. */
    probe = a;
    if (pl_der_next(&probe, &inner) == PL_OK && inner.tag == PL_TAG_SEQUENCE && pl_der_done(&probe))
        *body = pl_sgp32i_value(&inner);
    return pl_sgp32i_check_x509_body(body->p, body->len, cert);
}

/* ---- encoding ---- */

void pl_sgp32i_fail(struct pl_wr *w)
{
    pl_wr_fail(w, PL_ERR_INVAL);
}

void pl_sgp32i_end(struct pl_wr *w, size_t mark)
{
    (void)pl_der_end(w, mark);
}

void pl_sgp32i_put_utf8(struct pl_wr *w, uint32_t tag, struct pl_sgp32_buf s, size_t min,
                        size_t max)
{
    if ((s.p == NULL && s.len != 0) || s.len < min || s.len > max
        || (s.p != NULL && !pl_der_utf8_valid(s.p, s.len))) {
        pl_sgp32i_fail(w);
        return;
    }
    (void)pl_der_put_tlv(w, tag, s.p, s.len);
}

void pl_sgp32i_put_octets(struct pl_wr *w, uint32_t tag, struct pl_sgp32_buf s, size_t min,
                          size_t max)
{
    if ((s.p == NULL && s.len != 0) || s.len < min || s.len > max) {
        pl_sgp32i_fail(w);
        return;
    }
    (void)pl_der_put_tlv(w, tag, s.p, s.len);
}

void pl_sgp32i_put_bits(struct pl_wr *w, uint32_t tag, uint32_t mask)
{
    uint8_t b[5] = {0, 0, 0, 0, 0};
    size_t nbits = 0;
    for (unsigned i = 0; i < 32; i++) {
        if (mask & (1u << i)) {
            b[1 + i / 8] |= (uint8_t)(0x80u >> (i % 8));
            nbits = i + 1;
        }
    }
    size_t nbytes = (nbits + 7) / 8;
    b[0] = (uint8_t)(nbytes * 8 - nbits);
    (void)pl_der_put_tlv(w, tag, b, 1 + nbytes);
}

void pl_sgp32i_put_u31(struct pl_wr *w, uint32_t tag, uint32_t v)
{
    if (v > PL_SGP32_COUNTER_MAX) {
        pl_sgp32i_fail(w);
        return;
    }
    (void)pl_der_put_int(w, tag, (int64_t)v);
}

void pl_sgp32i_put_raw(struct pl_wr *w, uint32_t tag, struct pl_sgp32_buf raw)
{
    struct pl_tlv t;
    if (raw.p == NULL || pl_der_parse_one(raw.p, raw.len, tag, &t) != PL_OK) {
        pl_sgp32i_fail(w);
        return;
    }
    (void)pl_wr_bytes(w, raw.p, raw.len);
}

void pl_sgp32i_put_list(struct pl_wr *w, uint32_t tag, const struct pl_sgp32_list *l)
{
    if (l->p == NULL && l->len != 0) {
        pl_sgp32i_fail(w);
        return;
    }
    (void)pl_der_put_tlv(w, tag, l->p, l->len);
}

/* ---- signatures (SGP.32 §2.11.1.1, §2.11.2.1) ---- */

int pl_sgp32i_sign(const struct pl_eckey *key, const struct pl_rng *rng, const uint8_t *signed_der,
                   size_t signed_len, const int64_t *token, uint8_t sig[PL_ECDSA_SIG_LEN])
{
    uint8_t tok[PL_SGP32_TOKEN_TLV_MAX];
    size_t tok_len;
    int rc = pl_sgp32_token_tlv(token, tok, &tok_len);
    if (rc)
        return rc;
    struct pl_iov iov[2] = {{signed_der, signed_len}, {tok, tok_len}};
    return pl_ecdsa_sign_iov(key, iov, 2, rng, sig);
}

int pl_sgp32i_verify(const struct pl_eckey *key, struct pl_sgp32_buf signed_raw,
                     const int64_t *token, struct pl_sgp32_buf sig)
{
    uint8_t tok[PL_SGP32_TOKEN_TLV_MAX];
    uint8_t rs[PL_ECDSA_SIG_LEN];
    size_t tok_len;
    int rc = PL_ERR_INTERNAL;

    if (key == NULL || signed_raw.p == NULL || sig.p == NULL)
        return PL_ERR_INVAL;
    if ((rc = pl_sgp32_token_tlv(token, tok, &tok_len)))
        return rc;
    struct pl_iov iov[2] = {{signed_raw.p, signed_raw.len}, {tok, tok_len}};

    /* EIM.md §4.1-4.2: emit r||s, accept r||s or DER. A 64-byte value is tried as r||s
     * first; anything that parses as a strict DER ECDSA-Sig-Value is tried as DER. Both
     * interpretations need the same private key, so accepting either is not weaker. */
    rc = PL_ERR_BAD_SIGNATURE;
    if (sig.len == PL_ECDSA_SIG_LEN) {
        rc = pl_ecdsa_verify_iov(key, iov, 2, sig.p);
        if (rc == PL_OK)
            return PL_OK;
    }
    if (pl_ecdsa_sig_from_der(sig.p, sig.len, rs) == PL_OK)
        rc = pl_ecdsa_verify_iov(key, iov, 2, rs);
    return rc;
}
