/* Strict DER (ITU-T X.690 §8.1 identifier/length, §10 DER restrictions, §8.2-8.19
 * primitive types) over the bounds-checked reader. */
#include "provline/protocol/der.h"

#include <string.h>

void pl_der_init_limits(struct pl_der *d, const uint8_t *p, size_t len, unsigned max_depth,
                        size_t max_len)
{
    pl_rd_init(&d->rd, p, len);
    d->depth = 0;
    d->max_depth = max_depth ? max_depth : 1;
    d->max_len = max_len ? max_len : 1;
}

void pl_der_init(struct pl_der *d, const uint8_t *p, size_t len)
{
    pl_der_init_limits(d, p, len, PL_DER_MAX_DEPTH, PL_DER_MAX_LEN);
}

bool pl_der_done(const struct pl_der *d)
{
    return pl_rd_done(&d->rd);
}

bool pl_der_tag_constructed(uint32_t tag)
{
    uint32_t first = tag;
    while (first > 0xFFu)
        first >>= 8;
    return (first & 0x20u) != 0;
}

unsigned pl_der_tag_size(uint32_t tag)
{
    if (tag == 0)
        return 0;
    if (tag <= 0xFFu)
        return (tag & 0x1Fu) == 0x1Fu ? 0 : 1;
    if (tag <= 0xFFFFu) {
        uint32_t b0 = tag >> 8, b1 = tag & 0xFFu;
        return ((b0 & 0x1Fu) == 0x1Fu && b1 >= 0x1Fu && b1 < 0x80u) ? 2 : 0;
    }
    if (tag <= 0xFFFFFFu) {
        uint32_t b0 = tag >> 16, b1 = (tag >> 8) & 0xFFu, b2 = tag & 0xFFu;
        return ((b0 & 0x1Fu) == 0x1Fu && b1 > 0x80u && b2 < 0x80u) ? 3 : 0;
    }
    return 0;
}

/* X.690 §8.1.2: identifier octets; DER-minimal high tag numbers. */
int pl_der_read_tag(struct pl_rd *r, uint32_t *tag)
{
    uint8_t b0, b;
    int rc = pl_rd_u8(r, &b0);
    if (rc)
        return rc;
    if ((b0 & 0x1Fu) != 0x1Fu) {
        if (b0 == 0)
            return PL_ERR_DER_TAG; /* end-of-contents: only in indefinite form */
        *tag = b0;
        return PL_OK;
    }
    uint32_t t = b0;
    uint32_t number = 0;
    for (unsigned i = 0; i < 3; i++) {
        if ((rc = pl_rd_u8(r, &b)))
            return rc;
        if (i == 0 && b == 0x80u)
            return PL_ERR_DER_NONMINIMAL; /* leading zero septet */
        t = (t << 8) | b;
        number = (number << 7) | (b & 0x7Fu);
        if (!(b & 0x80u)) {
            if (number < 0x1Fu)
                return PL_ERR_DER_NONMINIMAL; /* fits the low-tag form */
            *tag = t;
            return PL_OK;
        }
        if (i == 1)
            break; /* a third continuation: over our 3-octet limit */
    }
    return PL_ERR_DER_TAG;
}

/* X.690 §8.1.3 and §10.1: definite, minimal length. */
static int read_len(struct pl_rd *r, size_t max_len, size_t *len)
{
    uint8_t l0, b;
    int rc = pl_rd_u8(r, &l0);
    if (rc)
        return rc;
    if (l0 < 0x80u) {
        *len = l0;
        return PL_OK;
    }
    if (l0 == 0x80u)
        return PL_ERR_DER_INDEFINITE;
    unsigned n = l0 & 0x7Fu;
    if (n > 4)
        return PL_ERR_DER_TOOBIG;
    uint32_t v = 0;
    for (unsigned i = 0; i < n; i++) {
        if ((rc = pl_rd_u8(r, &b)))
            return rc;
        if (i == 0 && b == 0)
            return PL_ERR_DER_NONMINIMAL;
        v = (v << 8) | b;
    }
    if (v < 0x80u)
        return PL_ERR_DER_NONMINIMAL;
    if (v > max_len)
        return PL_ERR_DER_TOOBIG;
    *len = v;
    return PL_OK;
}

int pl_der_read_header(struct pl_rd *r, size_t max_len, uint32_t *tag, size_t *len)
{
    struct pl_rd c = *r;
    int rc = pl_der_read_tag(&c, tag);
    if (rc == PL_OK)
        rc = read_len(&c, max_len, len);
    if (rc == PL_OK)
        *r = c;
    return rc;
}

int pl_der_next(struct pl_der *d, struct pl_tlv *tlv)
{
    struct pl_rd r = d->rd; /* work on a copy: the cursor moves only on success */
    const uint8_t *start = pl_rd_ptr(&r);
    uint32_t tag;
    size_t len;
    const uint8_t *value;
    int rc;

    if (pl_rd_done(&r))
        return PL_ERR_TRUNCATED;
    if ((rc = pl_der_read_tag(&r, &tag)))
        return rc;
    if ((rc = read_len(&r, d->max_len, &len)))
        return rc;
    if (len > pl_rd_left(&r))
        return PL_ERR_DER_LENGTH;
    size_t hdr = pl_rd_left(&d->rd) - pl_rd_left(&r);
    if ((rc = pl_rd_bytes(&r, len, &value)))
        return rc;
    tlv->tag = tag;
    tlv->constructed = pl_der_tag_constructed(tag);
    tlv->value = value;
    tlv->len = len;
    tlv->raw = start;
    tlv->raw_len = hdr + len;
    d->rd = r;
    return PL_OK;
}

int pl_der_peek_tag(const struct pl_der *d, uint32_t *tag)
{
    struct pl_rd r = d->rd;
    if (pl_rd_done(&r))
        return PL_ERR_TRUNCATED;
    return pl_der_read_tag(&r, tag);
}

int pl_der_expect(struct pl_der *d, uint32_t tag, struct pl_tlv *tlv)
{
    struct pl_der copy = *d;
    int rc = pl_der_next(&copy, tlv);
    if (rc)
        return rc;
    if (tlv->tag != tag)
        return PL_ERR_DER_TAG;
    *d = copy;
    return PL_OK;
}

int pl_der_optional(struct pl_der *d, uint32_t tag, struct pl_tlv *tlv, bool *present)
{
    uint32_t t;
    *present = false;
    if (pl_der_done(d))
        return PL_OK;
    int rc = pl_der_peek_tag(d, &t);
    if (rc)
        return rc;
    if (t != tag)
        return PL_OK;
    rc = pl_der_next(d, tlv);
    if (rc == PL_OK)
        *present = true;
    return rc;
}

int pl_der_enter(const struct pl_der *parent, const struct pl_tlv *tlv, struct pl_der *child)
{
    if (!tlv->constructed)
        return PL_ERR_DER_TAG;
    if (parent->depth + 1 > parent->max_depth)
        return PL_ERR_DER_DEPTH;
    pl_rd_init(&child->rd, tlv->value, tlv->len);
    child->depth = parent->depth + 1;
    child->max_depth = parent->max_depth;
    child->max_len = parent->max_len;
    return PL_OK;
}

int pl_der_finish(const struct pl_der *d)
{
    return pl_der_done(d) ? PL_OK : PL_ERR_DER_TRAILING;
}

int pl_der_open_one(const uint8_t *p, size_t len, uint32_t tag, struct pl_tlv *t,
                    struct pl_der *in)
{
    struct pl_der top;
    int rc;
    if (p == NULL && len != 0)
        return PL_ERR_INVAL;
    pl_der_init(&top, p, len);
    if ((rc = pl_der_expect(&top, tag, t)))
        return rc;
    if ((rc = pl_der_finish(&top)))
        return rc;
    return pl_der_enter(&top, t, in); /* the child does not refer to top */
}

int pl_der_parse_one(const uint8_t *p, size_t len, uint32_t tag, struct pl_tlv *tlv)
{
    struct pl_der d;
    pl_der_init(&d, p, len);
    int rc = pl_der_next(&d, tlv);
    if (rc)
        return rc;
    if (tag != 0 && tlv->tag != tag)
        return PL_ERR_DER_TAG;
    return pl_der_finish(&d);
}

/* X.690 §10.2: string types are primitive in DER; a few universal types have fixed
 * content rules we can check without knowing the schema. */
static int check_universal(const struct pl_tlv *t)
{
    int64_t i;
    bool b;
    switch (t->tag) {
    case 0x23: /* constructed BIT STRING */
    case 0x24: /* constructed OCTET STRING */
    case 0x2C: /* constructed UTF8String */
        return PL_ERR_DER_TAG;
    case PL_TAG_BOOLEAN:
        return pl_der_get_bool(t, &b);
    case PL_TAG_NULL:
        return pl_der_get_null(t);
    case PL_TAG_INTEGER: {
        int rc = pl_der_get_int(t, &i);
        /* Big integers (serials, curve values) are fine if minimal. */
        if (rc == PL_ERR_OVERFLOW)
            rc = PL_OK;
        return rc;
    }
    case PL_TAG_OID:
        return pl_der_check_oid(t);
    default:
        return PL_OK;
    }
}

static int validate(struct pl_der *d)
{
    while (!pl_der_done(d)) {
        struct pl_tlv t;
        int rc = pl_der_next(d, &t);
        if (rc)
            return rc;
        if ((rc = check_universal(&t)))
            return rc;
        if (t.constructed) {
            struct pl_der child;
            if ((rc = pl_der_enter(d, &t, &child)))
                return rc;
            if ((rc = validate(&child)))
                return rc;
        }
    }
    return PL_OK;
}

int pl_der_validate(const uint8_t *p, size_t len, unsigned max_depth)
{
    struct pl_der d;
    struct pl_tlv t;
    pl_der_init_limits(&d, p, len, max_depth ? max_depth : PL_DER_MAX_DEPTH, PL_DER_MAX_LEN);
    /* Exactly one outermost TLV. */
    struct pl_der probe = d;
    int rc = pl_der_next(&probe, &t);
    if (rc)
        return rc;
    if ((rc = pl_der_finish(&probe)))
        return rc;
    return validate(&d);
}

/* ---- primitive contents ---- */

int pl_der_get_int(const struct pl_tlv *tlv, int64_t *out)
{
    const uint8_t *v = tlv->value;
    size_t n = tlv->len;
    if (n == 0)
        return PL_ERR_DER_VALUE;
    if (n > 1 && ((v[0] == 0x00 && !(v[1] & 0x80u)) || (v[0] == 0xFF && (v[1] & 0x80u))))
        return PL_ERR_DER_NONMINIMAL;
    if (n > 8)
        return PL_ERR_OVERFLOW;
    uint64_t u = (v[0] & 0x80u) ? UINT64_MAX : 0;
    for (size_t i = 0; i < n; i++)
        u = (u << 8) | v[i];
    memcpy(out, &u, sizeof(*out)); /* two's complement reinterpretation */
    return PL_OK;
}

int pl_der_get_uint(const struct pl_tlv *tlv, uint64_t *out)
{
    const uint8_t *v = tlv->value;
    size_t n = tlv->len;
    if (n == 0)
        return PL_ERR_DER_VALUE;
    if (n > 1 && ((v[0] == 0x00 && !(v[1] & 0x80u)) || (v[0] == 0xFF && (v[1] & 0x80u))))
        return PL_ERR_DER_NONMINIMAL;
    if (v[0] & 0x80u)
        return PL_ERR_DER_VALUE; /* negative */
    if (n > 9 || (n == 9 && v[0] != 0))
        return PL_ERR_OVERFLOW;
    uint64_t u = 0;
    for (size_t i = 0; i < n; i++)
        u = (u << 8) | v[i];
    *out = u;
    return PL_OK;
}

int pl_der_get_bool(const struct pl_tlv *tlv, bool *out)
{
    if (tlv->len != 1 || (tlv->value[0] != 0x00 && tlv->value[0] != 0xFF))
        return PL_ERR_DER_VALUE;
    *out = tlv->value[0] == 0xFF;
    return PL_OK;
}

int pl_der_get_null(const struct pl_tlv *tlv)
{
    return tlv->len == 0 ? PL_OK : PL_ERR_DER_VALUE;
}

int pl_der_get_octets(const struct pl_tlv *tlv, size_t min, size_t max, const uint8_t **out,
                      size_t *len)
{
    if (tlv->constructed)
        return PL_ERR_DER_TAG;
    if (tlv->len < min || tlv->len > max)
        return PL_ERR_DER_VALUE;
    *out = tlv->value;
    *len = tlv->len;
    return PL_OK;
}

int pl_der_get_fixed(const struct pl_tlv *tlv, void *out, size_t n)
{
    if (tlv->constructed)
        return PL_ERR_DER_TAG;
    if (tlv->len != n)
        return PL_ERR_DER_VALUE;
    if (n)
        memcpy(out, tlv->value, n);
    return PL_OK;
}

/* RFC 3629 §4: well-formed UTF-8 only. */
bool pl_der_utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t extra;
        uint32_t cp, min;
        if (c == 0)
            return false;
        if (c < 0x80u) {
            i++;
            continue;
        } else if ((c & 0xE0u) == 0xC0u) {
            extra = 1;
            cp = c & 0x1Fu;
            min = 0x80;
        } else if ((c & 0xF0u) == 0xE0u) {
            extra = 2;
            cp = c & 0x0Fu;
            min = 0x800;
        } else if ((c & 0xF8u) == 0xF0u) {
            extra = 3;
            cp = c & 0x07u;
            min = 0x10000;
        } else {
            return false;
        }
        if (n - i - 1 < extra)
            return false;
        for (size_t k = 1; k <= extra; k++) {
            uint8_t cc = s[i + k];
            if ((cc & 0xC0u) != 0x80u)
                return false;
            cp = (cp << 6) | (cc & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFFu || (cp >= 0xD800u && cp <= 0xDFFFu))
            return false;
        i += extra + 1;
    }
    return true;
}

int pl_der_get_utf8(const struct pl_tlv *tlv, char *out, size_t cap)
{
    if (tlv->constructed)
        return PL_ERR_DER_TAG;
    if (!pl_der_utf8_valid(tlv->value, tlv->len))
        return PL_ERR_DER_VALUE;
    if (cap == 0 || tlv->len > cap - 1)
        return PL_ERR_OVERFLOW;
    if (tlv->len)
        memcpy(out, tlv->value, tlv->len);
    out[tlv->len] = '\0';
    return PL_OK;
}

int pl_der_check_oid(const struct pl_tlv *tlv)
{
    const uint8_t *v = tlv->value;
    size_t n = tlv->len;
    if (tlv->constructed || n == 0)
        return PL_ERR_DER_VALUE;
    bool arc_start = true;
    for (size_t i = 0; i < n; i++) {
        if (arc_start && v[i] == 0x80u)
            return PL_ERR_DER_NONMINIMAL;
        arc_start = !(v[i] & 0x80u);
    }
    return arc_start ? PL_OK : PL_ERR_DER_VALUE; /* last arc must be complete */
}

int pl_der_get_bits(const struct pl_tlv *tlv, const uint8_t **bits, size_t *nbytes,
                    unsigned *unused)
{
    const uint8_t *v = tlv->value;
    size_t n = tlv->len;
    if (tlv->constructed || n == 0 || v[0] > 7)
        return PL_ERR_DER_VALUE;
    if (n == 1 && v[0] != 0)
        return PL_ERR_DER_VALUE;
    if (n > 1 && (v[n - 1] & ((1u << v[0]) - 1u)))
        return PL_ERR_DER_VALUE; /* X.690 §11.2.1: padding bits are zero */
    *bits = v + 1;
    *nbytes = n - 1;
    *unused = v[0];
    return PL_OK;
}

/* ---- encoders ---- */

static int put_tag(struct pl_wr *w, uint32_t tag)
{
    unsigned n = pl_der_tag_size(tag);
    if (n == 0) {
        pl_wr_fail(w, PL_ERR_INVAL);
        return pl_wr_status(w);
    }
    for (unsigned i = n; i > 0; i--)
        pl_wr_u8(w, (uint8_t)(tag >> (8 * (i - 1))));
    return pl_wr_status(w);
}

static size_t len_size(size_t len)
{
    if (len < 0x80u)
        return 1;
    size_t n = 0;
    for (size_t v = len; v; v >>= 8)
        n++;
    return 1 + n;
}

static void len_write(uint8_t *p, size_t len)
{
    size_t n = len_size(len);
    if (n == 1) {
        p[0] = (uint8_t)len;
        return;
    }
    p[0] = (uint8_t)(0x80u | (n - 1));
    for (size_t i = 1; i < n; i++)
        p[i] = (uint8_t)(len >> (8 * (n - 1 - i)));
}

int pl_der_put_header(struct pl_wr *w, uint32_t tag, size_t len)
{
    if (len > PL_DER_MAX_LEN) {
        pl_wr_fail(w, PL_ERR_DER_TOOBIG);
        return pl_wr_status(w);
    }
    if (put_tag(w, tag))
        return pl_wr_status(w);
    uint8_t *p = pl_wr_reserve(w, len_size(len));
    if (p)
        len_write(p, len);
    return pl_wr_status(w);
}

int pl_der_put_tlv(struct pl_wr *w, uint32_t tag, const void *value, size_t len)
{
    if (pl_der_put_header(w, tag, len) == PL_OK)
        pl_wr_bytes(w, value, len);
    return pl_wr_status(w);
}

int pl_der_put_int(struct pl_wr *w, uint32_t tag, int64_t v)
{
    uint8_t b[8];
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    for (size_t i = 0; i < 8; i++)
        b[7 - i] = (uint8_t)(u >> (8 * i));
    size_t off = 0;
    while (off < 7 && ((b[off] == 0x00 && !(b[off + 1] & 0x80u))
                       || (b[off] == 0xFF && (b[off + 1] & 0x80u))))
        off++;
    return pl_der_put_tlv(w, tag, b + off, 8 - off);
}

int pl_der_put_uint(struct pl_wr *w, uint32_t tag, uint64_t v)
{
    uint8_t b[9];
    b[0] = 0;
    for (size_t i = 0; i < 8; i++)
        b[8 - i] = (uint8_t)(v >> (8 * i));
    size_t off = 0;
    while (off < 8 && b[off] == 0x00 && !(b[off + 1] & 0x80u))
        off++;
    return pl_der_put_tlv(w, tag, b + off, 9 - off);
}

int pl_der_put_bool(struct pl_wr *w, uint32_t tag, bool v)
{
    uint8_t b = v ? 0xFF : 0x00;
    return pl_der_put_tlv(w, tag, &b, 1);
}

int pl_der_put_null(struct pl_wr *w, uint32_t tag)
{
    return pl_der_put_tlv(w, tag, NULL, 0);
}

int pl_der_put_utf8(struct pl_wr *w, uint32_t tag, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (!pl_der_utf8_valid((const uint8_t *)s, n)) {
        pl_wr_fail(w, PL_ERR_INVAL);
        return pl_wr_status(w);
    }
    return pl_der_put_tlv(w, tag, s, n);
}

size_t pl_der_begin(struct pl_wr *w, uint32_t tag)
{
    if (put_tag(w, tag))
        return SIZE_MAX;
    size_t mark = w->len;
    pl_wr_u8(w, 0); /* placeholder for a short-form length */
    return pl_wr_status(w) ? SIZE_MAX : mark;
}

int pl_der_end(struct pl_wr *w, size_t mark)
{
    if (pl_wr_status(w))
        return pl_wr_status(w);
    if (mark == SIZE_MAX || mark >= w->len) {
        pl_wr_fail(w, PL_ERR_INVAL);
        return pl_wr_status(w);
    }
    size_t clen = w->len - mark - 1;
    if (clen > PL_DER_MAX_LEN) {
        pl_wr_fail(w, PL_ERR_DER_TOOBIG);
        return pl_wr_status(w);
    }
    size_t n = len_size(clen);
    if (n > 1 && pl_wr_insert_gap(w, mark + 1, n - 1))
        return pl_wr_status(w);
    len_write(w->buf + mark, clen);
    return PL_OK;
}
