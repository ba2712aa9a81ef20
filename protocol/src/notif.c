/* GSMA SGP.22 v2.5 notifications: NotificationMetadata, §5.7.9 ES10b.ListNotification,
 * §5.7.10 ES10b.RetrieveNotificationsList, §5.7.11 ES10b.RemoveNotificationFromList
 * (NotificationSent). ASN.1: RSPDefinitions V2.5; tags listed in notif.h.
 * provline reference: IFPP.md §5.6. */
#include "provline/protocol/notif.h"

#include <string.h>

#include "provline/protocol/der.h"
#include "provline/protocol/pir.h"
#include "provline/protocol/rd.h"

#define TAG_SEQ 0x80u       /* seqNumber [0] */
#define TAG_OPS 0x81u       /* profileManagementOperation [1] */
#define TAG_ADDR 0x0Cu      /* notificationAddress UTF8String (untagged) */
#define TAG_ICCID 0x5Au     /* Iccid [APPLICATION 26] */
#define TAG_CRITERIA 0xA0u  /* RetrieveNotificationsListRequest.searchCriteria (automatic [0]) */
#define TAG_LIST 0xA0u      /* notificationList / notificationMetadataList (automatic [0]) */
#define TAG_LIST_ERR 0x81u  /* ...ResultError (automatic [1]) */
#define TAG_SENT_STATUS 0x80u /* deleteNotificationStatus (automatic [0]) */
#define TAG_SIGN 0x5F37u    /* euiccNotificationSignature [APPLICATION 55] */

/* Enough for a full NotificationMetadata: 4 + 11 + 4 + 4 + 255 + 12. */
#define META_MAX 320u

static int fail(struct pl_wr *w, int rc)
{
    pl_wr_fail(w, rc);
    return pl_wr_status(w);
}

/* ---- NotificationEvent ---- */

int pl_notif_event_get(const struct pl_tlv *tlv, uint8_t *ops)
{
    const uint8_t *bits;
    size_t nb;
    unsigned unused;
    uint8_t b, m = 0;
    struct pl_rd r;
    int rc;

    if ((rc = pl_der_get_bits(tlv, &bits, &nb, &unused)))
        return rc;
    if (nb == 0) {
        *ops = 0;
        return PL_OK;
    }
    if (nb > 1)
        return PL_ERR_DER_VALUE; /* only bits 0..3 are named in v2.5 */
    pl_rd_init(&r, bits, nb);
    if ((rc = pl_rd_u8(&r, &b)))
        return rc;
    /* X.690 §11.2.2: a named bit list has its trailing zero bits removed, so the last
     * bit present is a one (and an all-zero list is the empty bit string). */
    if (!(b & (1u << unused)))
        return PL_ERR_DER_VALUE;
    for (unsigned n = 0; n < 8; n++)
        if (b & (0x80u >> n))
            m = (uint8_t)(m | (1u << n));
    if (m & ~PL_NOTIF_EV_ALL)
        return PL_ERR_DER_VALUE;
    *ops = m;
    return PL_OK;
}

int pl_notif_event_put(struct pl_wr *w, uint32_t tag, uint8_t ops)
{
    uint8_t v[2] = {0, 0};
    unsigned hi = 0;
    if (ops & ~PL_NOTIF_EV_ALL)
        return fail(w, PL_ERR_INVAL);
    if (ops == 0)
        return pl_der_put_tlv(w, tag, v, 1);
    for (unsigned n = 0; n < 8; n++) {
        if (ops & (1u << n)) {
            v[1] = (uint8_t)(v[1] | (0x80u >> n));
            hi = n;
        }
    }
    v[0] = (uint8_t)(7u - hi);
    return pl_der_put_tlv(w, tag, v, 2);
}

static bool one_bit(uint8_t m)
{
    return m != 0 && (m & (m - 1u)) == 0;
}

/* ---- NotificationMetadata ---- */

int pl_notif_meta_decode(const uint8_t *p, size_t len, struct pl_notif_meta *out)
{
    struct pl_der d;
    struct pl_tlv t, f;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = pl_der_open_one(p, len, PL_TAG_NOTIF_META, &t, &d)))
        goto fail;
    if ((rc = pl_der_expect(&d, TAG_SEQ, &f)) || (rc = pl_der_get_uint(&f, &out->seq)))
        goto fail;
    if ((rc = pl_der_expect(&d, TAG_OPS, &f)) || (rc = pl_notif_event_get(&f, &out->ops)))
        goto fail;
    /* "Only one bit SHALL be set to 1" */
    if (!one_bit(out->ops)) {
        rc = PL_ERR_DER_VALUE;
        goto fail;
    }
    if ((rc = pl_der_expect(&d, TAG_ADDR, &f)))
        goto fail;
    if ((rc = pl_der_get_utf8(&f, out->addr, sizeof(out->addr)))) {
        if (rc == PL_ERR_OVERFLOW)
            rc = PL_ERR_DER_VALUE;
        goto fail;
    }
    if ((rc = pl_der_optional(&d, TAG_ICCID, &f, &out->has_iccid)))
        goto fail;
    if (out->has_iccid && (rc = pl_der_get_fixed(&f, out->iccid, PL_NOTIF_ICCID_LEN)))
        goto fail;
    if ((rc = pl_der_finish(&d)))
        goto fail;
    out->raw = t.raw;
    out->raw_len = t.raw_len;
    return PL_OK;
fail:
    memset(out, 0, sizeof(*out));
    return rc;
}

int pl_notif_meta_encode(const struct pl_notif_meta *in, struct pl_wr *w)
{
    int rc = pl_wr_status(w);
    size_t n = 0;
    if (rc)
        return rc;
    if (!one_bit(in->ops) || (in->ops & ~PL_NOTIF_EV_ALL))
        return fail(w, PL_ERR_INVAL);
    while (n <= PL_NOTIF_ADDR_MAX && in->addr[n] != '\0')
        n++;
    if (n > PL_NOTIF_ADDR_MAX)
        return fail(w, PL_ERR_INVAL);
    size_t m = pl_der_begin(w, PL_TAG_NOTIF_META);
    pl_der_put_uint(w, TAG_SEQ, in->seq);
    pl_notif_event_put(w, TAG_OPS, in->ops);
    pl_der_put_utf8(w, TAG_ADDR, in->addr);
    if (in->has_iccid)
        pl_der_put_tlv(w, TAG_ICCID, in->iccid, PL_NOTIF_ICCID_LEN);
    pl_der_end(w, m);
    return pl_wr_status(w);
}

/* ---- OtherSignedNotification ---- */

int pl_notif_other_decode(const uint8_t *p, size_t len, struct pl_notif_other *out)
{
    struct pl_der d;
    struct pl_tlv t, f;
    size_t n;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = pl_der_open_one(p, len, PL_TAG_SEQUENCE, &t, &d)))
        goto fail;
    if ((rc = pl_der_expect(&d, PL_TAG_NOTIF_META, &f))
        || (rc = pl_notif_meta_decode(f.raw, f.raw_len, &out->meta)))
        goto fail;
    if ((rc = pl_der_expect(&d, TAG_SIGN, &f))
        || (rc = pl_der_get_octets(&f, PL_ECDSA_SIG_LEN, PL_ECDSA_SIG_LEN, &out->sig, &n)))
        goto fail;
    if ((rc = pl_der_expect(&d, PL_TAG_SEQUENCE, &f))
        || (rc = pl_der_validate(f.raw, f.raw_len, PL_DER_MAX_DEPTH)))
        goto fail;
    out->euicc_cert = f.raw;
    out->euicc_cert_len = f.raw_len;
    if ((rc = pl_der_expect(&d, PL_TAG_SEQUENCE, &f))
        || (rc = pl_der_validate(f.raw, f.raw_len, PL_DER_MAX_DEPTH)))
        goto fail;
    out->eum_cert = f.raw;
    out->eum_cert_len = f.raw_len;
    if ((rc = pl_der_finish(&d)))
        goto fail;
    out->raw = t.raw;
    out->raw_len = t.raw_len;
    return PL_OK;
fail:
    memset(out, 0, sizeof(*out));
    return rc;
}

static int check_cert(const uint8_t *p, size_t len)
{
    struct pl_tlv t;
    int rc;
    if (!p)
        return PL_ERR_INVAL;
    if ((rc = pl_der_parse_one(p, len, PL_TAG_SEQUENCE, &t)))
        return rc;
    return pl_der_validate(p, len, PL_DER_MAX_DEPTH);
}

int pl_notif_other_encode(const struct pl_notif_other *in, const struct pl_eckey *key,
                          const struct pl_rng *rng, struct pl_wr *w)
{
    uint8_t tbs[META_MAX];
    uint8_t sig[PL_ECDSA_SIG_LEN];
    struct pl_wr tw;
    int rc = pl_wr_status(w);

    if (rc)
        return rc;
    if ((rc = check_cert(in->euicc_cert, in->euicc_cert_len))
        || (rc = check_cert(in->eum_cert, in->eum_cert_len)))
        return fail(w, rc);
    pl_wr_init_fixed(&tw, tbs, sizeof(tbs));
    if ((rc = pl_notif_meta_encode(&in->meta, &tw)))
        return fail(w, rc);
    if ((rc = pl_ecdsa_sign(key, tw.buf, tw.len, rng, sig)))
        return fail(w, rc);
    size_t m = pl_der_begin(w, PL_TAG_SEQUENCE);
    pl_wr_bytes(w, tw.buf, tw.len);
    pl_der_put_tlv(w, TAG_SIGN, sig, sizeof(sig));
    pl_wr_bytes(w, in->euicc_cert, in->euicc_cert_len);
    pl_wr_bytes(w, in->eum_cert, in->eum_cert_len);
    pl_der_end(w, m);
    return pl_wr_status(w);
}

int pl_notif_other_verify(const struct pl_notif_other *n, const struct pl_eckey *euicc_pub)
{
    if (!n->meta.raw || !n->sig)
        return PL_ERR_INVAL;
    return pl_ecdsa_verify(euicc_pub, n->meta.raw, n->meta.raw_len, n->sig);
}

/* ---- RetrieveNotificationsList ---- */

int pl_notif_rnl_req_decode(const uint8_t *p, size_t len, struct pl_notif_rnl_req *out)
{
    struct pl_der d, c;
    struct pl_tlv t, a0, f;
    bool present;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = pl_der_open_one(p, len, PL_TAG_RETRIEVE_NOTIF, &t, &d)))
        goto fail;
    if ((rc = pl_der_optional(&d, TAG_CRITERIA, &a0, &present)))
        goto fail;
    if (present) {
        if ((rc = pl_der_enter(&d, &a0, &c)) || (rc = pl_der_next(&c, &f)))
            goto fail;
        if (f.tag == TAG_SEQ) {
            out->crit = PL_NOTIF_CRIT_SEQ;
            rc = pl_der_get_uint(&f, &out->seq);
        } else if (f.tag == TAG_OPS) {
            out->crit = PL_NOTIF_CRIT_OPS;
            rc = pl_notif_event_get(&f, &out->ops);
        } else {
            rc = PL_ERR_DER_TAG;
        }
        if (rc || (rc = pl_der_finish(&c)))
            goto fail;
    }
    if ((rc = pl_der_finish(&d)))
        goto fail;
    return PL_OK;
fail:
    memset(out, 0, sizeof(*out));
    return rc;
}

int pl_notif_rnl_req_encode(const struct pl_notif_rnl_req *in, struct pl_wr *w)
{
    int rc = pl_wr_status(w);
    if (rc)
        return rc;
    size_t m = pl_der_begin(w, PL_TAG_RETRIEVE_NOTIF);
    switch (in->crit) {
    case PL_NOTIF_CRIT_NONE:
        break;
    case PL_NOTIF_CRIT_SEQ: {
        size_t c = pl_der_begin(w, TAG_CRITERIA);
        pl_der_put_uint(w, TAG_SEQ, in->seq);
        pl_der_end(w, c);
        break;
    }
    case PL_NOTIF_CRIT_OPS: {
        size_t c = pl_der_begin(w, TAG_CRITERIA);
        pl_notif_event_put(w, TAG_OPS, in->ops);
        pl_der_end(w, c);
        break;
    }
    default:
        return fail(w, PL_ERR_INVAL);
    }
    pl_der_end(w, m);
    return pl_wr_status(w);
}

static int pending_parse(const struct pl_tlv *t, struct pl_notif_pending *item)
{
    int rc;
    memset(item, 0, sizeof(*item));
    if (t->tag == PL_TAG_PIR) {
        struct pl_pir pir;
        if ((rc = pl_pir_decode(t->raw, t->raw_len, &pir)))
            return rc;
        item->kind = PL_NOTIF_KIND_PIR;
        item->meta = pir.meta;
    } else if (t->tag == PL_TAG_SEQUENCE) {
        struct pl_notif_other other;
        if ((rc = pl_notif_other_decode(t->raw, t->raw_len, &other)))
            return rc;
        item->kind = PL_NOTIF_KIND_OTHER;
        item->meta = other.meta;
    } else {
        return PL_ERR_DER_TAG;
    }
    item->raw = t->raw;
    item->raw_len = t->raw_len;
    return PL_OK;
}

/* The CHOICE inside a list response: 'A0' list (each entry parsed by cb) or '81' error. */
static int list_rsp_parse(const struct pl_der *d_in, bool *is_error, int64_t *error,
                          int (*cb)(void *ctx, size_t i, const struct pl_tlv *t), void *ctx,
                          size_t *n)
{
    struct pl_der d = *d_in, l;
    struct pl_tlv f;
    int rc;

    *n = 0;
    if ((rc = pl_der_next(&d, &f)))
        return rc;
    if (f.tag == TAG_LIST_ERR) {
        if ((rc = pl_der_get_int(&f, error)))
            return rc;
        *is_error = true;
    } else if (f.tag == TAG_LIST) {
        if ((rc = pl_der_enter(&d, &f, &l)))
            return rc;
        while (!pl_der_done(&l)) {
            struct pl_tlv e;
            if ((rc = pl_der_next(&l, &e)))
                return rc;
            if (*n == PL_NOTIF_LIST_MAX)
                return PL_ERR_OVERFLOW;
            if ((rc = cb(ctx, *n, &e)))
                return rc;
            (*n)++;
        }
    } else {
        return PL_ERR_DER_TAG;
    }
    return pl_der_finish(&d);
}

static int rnl_item(void *ctx, size_t i, const struct pl_tlv *t)
{
    struct pl_notif_rnl_rsp *out = ctx;
    return pending_parse(t, &out->items[i]);
}

int pl_notif_rnl_rsp_decode(const uint8_t *p, size_t len, struct pl_notif_rnl_rsp *out)
{
    struct pl_der d;
    struct pl_tlv t;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = pl_der_open_one(p, len, PL_TAG_RETRIEVE_NOTIF, &t, &d)))
        goto fail;
    if ((rc = list_rsp_parse(&d, &out->is_error, &out->error, rnl_item, out, &out->n)))
        goto fail;
    return PL_OK;
fail:
    memset(out, 0, sizeof(*out));
    return rc;
}

int pl_notif_rnl_rsp_encode(const struct pl_notif_rnl_rsp *in, struct pl_wr *w)
{
    int rc = pl_wr_status(w);
    if (rc)
        return rc;
    if (!in->is_error) {
        if (in->n > PL_NOTIF_LIST_MAX)
            return fail(w, PL_ERR_INVAL);
        for (size_t i = 0; i < in->n; i++) {
            const struct pl_notif_pending *it = &in->items[i];
            uint32_t tag = it->kind == PL_NOTIF_KIND_PIR     ? PL_TAG_PIR
                           : it->kind == PL_NOTIF_KIND_OTHER ? PL_TAG_SEQUENCE
                                                             : 0;
            struct pl_tlv t;
            if (tag == 0 || !it->raw)
                return fail(w, PL_ERR_INVAL);
            if ((rc = pl_der_parse_one(it->raw, it->raw_len, tag, &t))
                || (rc = pl_der_validate(it->raw, it->raw_len, PL_DER_MAX_DEPTH)))
                return fail(w, rc);
        }
    }
    size_t m = pl_der_begin(w, PL_TAG_RETRIEVE_NOTIF);
    if (in->is_error) {
        pl_der_put_int(w, TAG_LIST_ERR, in->error);
    } else {
        size_t l = pl_der_begin(w, TAG_LIST);
        for (size_t i = 0; i < in->n; i++)
            pl_wr_bytes(w, in->items[i].raw, in->items[i].raw_len);
        pl_der_end(w, l);
    }
    pl_der_end(w, m);
    return pl_wr_status(w);
}

/* ---- ListNotification ---- */

int pl_notif_list_req_decode(const uint8_t *p, size_t len, struct pl_notif_list_req *out)
{
    struct pl_der d;
    struct pl_tlv t, f;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = pl_der_open_one(p, len, PL_TAG_LIST_NOTIF, &t, &d)))
        goto fail;
    if ((rc = pl_der_optional(&d, TAG_OPS, &f, &out->has_ops)))
        goto fail;
    if (out->has_ops && (rc = pl_notif_event_get(&f, &out->ops)))
        goto fail;
    if ((rc = pl_der_finish(&d)))
        goto fail;
    return PL_OK;
fail:
    memset(out, 0, sizeof(*out));
    return rc;
}

int pl_notif_list_req_encode(const struct pl_notif_list_req *in, struct pl_wr *w)
{
    int rc = pl_wr_status(w);
    if (rc)
        return rc;
    size_t m = pl_der_begin(w, PL_TAG_LIST_NOTIF);
    if (in->has_ops)
        pl_notif_event_put(w, TAG_OPS, in->ops);
    pl_der_end(w, m);
    return pl_wr_status(w);
}

static int list_item(void *ctx, size_t i, const struct pl_tlv *t)
{
    struct pl_notif_list_rsp *out = ctx;
    if (t->tag != PL_TAG_NOTIF_META)
        return PL_ERR_DER_TAG;
    return pl_notif_meta_decode(t->raw, t->raw_len, &out->items[i]);
}

int pl_notif_list_rsp_decode(const uint8_t *p, size_t len, struct pl_notif_list_rsp *out)
{
    struct pl_der d;
    struct pl_tlv t;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = pl_der_open_one(p, len, PL_TAG_LIST_NOTIF, &t, &d)))
        goto fail;
    if ((rc = list_rsp_parse(&d, &out->is_error, &out->error, list_item, out, &out->n)))
        goto fail;
    return PL_OK;
fail:
    memset(out, 0, sizeof(*out));
    return rc;
}

int pl_notif_list_rsp_encode(const struct pl_notif_list_rsp *in, struct pl_wr *w)
{
    int rc = pl_wr_status(w);
    if (rc)
        return rc;
    if (!in->is_error && in->n > PL_NOTIF_LIST_MAX)
        return fail(w, PL_ERR_INVAL);
    size_t m = pl_der_begin(w, PL_TAG_LIST_NOTIF);
    if (in->is_error) {
        pl_der_put_int(w, TAG_LIST_ERR, in->error);
    } else {
        size_t l = pl_der_begin(w, TAG_LIST);
        for (size_t i = 0; i < in->n; i++)
            if ((rc = pl_notif_meta_encode(&in->items[i], w)))
                return rc;
        pl_der_end(w, l);
    }
    pl_der_end(w, m);
    return pl_wr_status(w);
}

/* ---- NotificationSent ---- */

int pl_notif_sent_req_decode(const uint8_t *p, size_t len, uint64_t *seq)
{
    struct pl_der d;
    struct pl_tlv t, f;
    int rc;
    if ((rc = pl_der_open_one(p, len, PL_TAG_NOTIF_SENT, &t, &d)))
        return rc;
    if ((rc = pl_der_expect(&d, TAG_SEQ, &f)) || (rc = pl_der_get_uint(&f, seq)))
        return rc;
    return pl_der_finish(&d);
}

int pl_notif_sent_req_encode(uint64_t seq, struct pl_wr *w)
{
    size_t m = pl_der_begin(w, PL_TAG_NOTIF_SENT);
    pl_der_put_uint(w, TAG_SEQ, seq);
    pl_der_end(w, m);
    return pl_wr_status(w);
}

int pl_notif_sent_rsp_decode(const uint8_t *p, size_t len, int64_t *status)
{
    struct pl_der d;
    struct pl_tlv t, f;
    int rc;
    if ((rc = pl_der_open_one(p, len, PL_TAG_NOTIF_SENT, &t, &d)))
        return rc;
    if ((rc = pl_der_expect(&d, TAG_SENT_STATUS, &f)) || (rc = pl_der_get_int(&f, status)))
        return rc;
    return pl_der_finish(&d);
}

int pl_notif_sent_rsp_encode(int64_t status, struct pl_wr *w)
{
    size_t m = pl_der_begin(w, PL_TAG_NOTIF_SENT);
    pl_der_put_int(w, TAG_SENT_STATUS, status);
    pl_der_end(w, m);
    return pl_wr_status(w);
}
