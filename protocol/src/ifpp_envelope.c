/* provline IFPP package envelope "IfppPackage" ('FF70'). PROVLINE'S OWN FORMAT until GSMA
 * SGP.42 is public: docs/ifpp-es10f.md §2 and §7 (wire, ASN.1), docs/decisions/0004. Sources:
 * IFPP.md §6.1 (package envelope), §5.1-§5.2 (GSMA SGP.22 v2.5 §2.5.4 BoundProfilePackage,
 * carried byte-exact), §7 cases 20 and 22. Strict DER through der.h only. */
#include "provline/protocol/ifpp_envelope.h"

#include <string.h>


/* IfppPackageSigned field tags (context class, IMPLICIT). */
#define T_VERSION       0x80u
#define T_PACKAGE_ID    0x81u
#define T_BATCH_ID      0x82u
#define T_EID           0x83u
#define T_OTK_ID        0x84u
#define T_OTK_PK_HASH   0x85u
#define T_TID           0x86u
#define T_CURVE         0x87u
#define T_NOT_AFTER     0x88u
#define T_KEY_MAKER_SEQ 0x89u
#define T_DPF_CHAIN     0xAAu

/* SGP.22 v2.5 §2.5.4 / IFPP.md §5.1: BF36 { BF23 { remoteOpId '82', transactionId '80' ...} } */
#define T_ISCR           0xBF23u
#define T_ISCR_REMOTE_OP 0x82u
#define T_ISCR_TID       0x80u

static int wr_fail(struct pl_wr *w, int err)
{
    pl_wr_fail(w, err);
    return pl_wr_status(w);
}

static bool cert_ok(const struct pl_ifpp_cert *c)
{
    struct pl_tlv t;
    if (!c->der || c->len == 0 || c->len > PL_IFPP_CERT_MAX)
        return false;
    if (pl_der_parse_one(c->der, c->len, PL_TAG_SEQUENCE, &t) != PL_OK)
        return false;
    return pl_der_validate(c->der, c->len, 0) == PL_OK;
}

int pl_ifpp_chain_encode(struct pl_wr *w, uint32_t tag, const struct pl_ifpp_chain *c)
{
    if (!w)
        return PL_ERR_INVAL;
    if (!c || c->n == 0 || c->n > PL_IFPP_CHAIN_MAX)
        return wr_fail(w, PL_ERR_INVAL);
    for (size_t i = 0; i < c->n; i++)
        if (!cert_ok(&c->cert[i]))
            return wr_fail(w, PL_ERR_INVAL);
    size_t mark = pl_der_begin(w, tag);
    for (size_t i = 0; i < c->n; i++)
        pl_wr_bytes(w, c->cert[i].der, c->cert[i].len);
    return pl_der_end(w, mark);
}

int pl_ifpp_chain_decode(const struct pl_der *parent, const struct pl_tlv *tlv,
                         struct pl_ifpp_chain *out)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_der d;
    if (!parent || !tlv || !out)
        return PL_ERR_INVAL;
    out->n = 0;
    if ((rc = pl_der_enter(parent, tlv, &d)))
        goto out;
    while (!pl_der_done(&d)) {
        struct pl_tlv t;
        if ((rc = pl_der_expect(&d, PL_TAG_SEQUENCE, &t)))
            goto out;
        if (out->n == PL_IFPP_CHAIN_MAX || t.raw_len > PL_IFPP_CERT_MAX) {
            rc = PL_ERR_OVERFLOW;
            goto out;
        }
        if ((rc = pl_der_validate(t.raw, t.raw_len, 0)))
            goto out;
        out->cert[out->n].der = t.raw;
        out->cert[out->n].len = t.raw_len;
        out->n++;
    }
    rc = out->n == 0 ? PL_ERR_DER_VALUE : PL_OK; /* SIZE(1..PL_IFPP_CHAIN_MAX) */
out:
    return rc;
}

/* The transactionId of the BPP's InitialiseSecureChannelRequest (IFPP.md §5.1): the first
 * element of 'BF36' is 'BF23', whose first two elements are remoteOpId '82' and
 * transactionId '80'. Only this path is read; bpp.h decodes the BPP in full. */
static int bpp_iscr_tid(const uint8_t *bpp, size_t len, const uint8_t **tid, size_t *tid_len)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_der d, b, i;
    struct pl_tlv t;
    pl_der_init_limits(&d, bpp, len, PL_DER_MAX_DEPTH, PL_IFPP_BPP_MAX);
    if ((rc = pl_der_expect(&d, PL_TAG_IFPP_BPP, &t)) || (rc = pl_der_finish(&d)))
        goto out;
    if ((rc = pl_der_enter(&d, &t, &b)) || (rc = pl_der_expect(&b, T_ISCR, &t)))
        goto out;
    if ((rc = pl_der_enter(&b, &t, &i)) || (rc = pl_der_expect(&i, T_ISCR_REMOTE_OP, &t)))
        goto out;
    if ((rc = pl_der_expect(&i, T_ISCR_TID, &t)))
        goto out;
    rc = pl_der_get_octets(&t, 1, PL_IFPP_TID_MAX, tid, tid_len);
out:
    return rc;
}

/* A whole, strictly valid 'BF36' within the cap. */
static int bpp_check(const uint8_t *bpp, size_t len)
{
    struct pl_tlv t;
    int rc = pl_der_parse_one(bpp, len, PL_TAG_IFPP_BPP, &t);
    if (rc)
        return rc;
    return pl_der_validate(bpp, len, 0);
}

static bool tid_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return alen == blen && alen > 0 && memcmp(a, b, alen) == 0;
}

static int get_u16(const struct pl_tlv *t, uint16_t *out)
{
    uint64_t v;
    int rc = pl_der_get_uint(t, &v);
    if (rc)
        return rc;
    if (v > UINT16_MAX)
        return PL_ERR_DER_VALUE;
    *out = (uint16_t)v;
    return PL_OK;
}

int pl_ifpp_pkg_decode(const uint8_t *p, size_t len, struct pl_ifpp_pkg *out)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_der d, env, s;
    struct pl_tlv outer, tbs, t;
    uint64_t v;
    const uint8_t *iscr_tid;
    size_t iscr_tid_len;

    if (!out || (!p && len))
        return PL_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    if (len > PL_IFPP_PKG_MAX)
        return PL_ERR_DER_TOOBIG;
    pl_der_init_limits(&d, p, len, PL_DER_MAX_DEPTH, PL_IFPP_PKG_MAX);
    if ((rc = pl_der_expect(&d, PL_TAG_IFPP_PACKAGE, &outer)) || (rc = pl_der_finish(&d)))
        goto out;
    if ((rc = pl_der_enter(&d, &outer, &env)))
        goto out;
    if ((rc = pl_der_expect(&env, PL_TAG_IFPP_PACKAGE_SIGNED, &tbs)))
        goto out;
    if ((rc = pl_der_expect(&env, PL_TAG_IFPP_SIGNATURE, &t))
        || (rc = pl_der_get_fixed(&t, out->env_sig, PL_ECDSA_SIG_LEN)))
        goto out;
    if ((rc = pl_der_finish(&env)))
        goto out;

    if ((rc = pl_der_enter(&env, &tbs, &s)))
        goto out;
    if ((rc = pl_der_expect(&s, T_VERSION, &t)) || (rc = pl_der_get_uint(&t, &v)))
        goto out;
    if (v != PL_IFPP_PKG_VERSION) {
        rc = PL_ERR_UNSUPPORTED;
        goto out;
    }
    if ((rc = pl_der_expect(&s, T_PACKAGE_ID, &t))
        || (rc = pl_der_get_fixed(&t, out->package_id, PL_IFPP_PACKAGE_ID_LEN)))
        goto out;
    if ((rc = pl_der_expect(&s, T_BATCH_ID, &t)))
        goto out;
    if (t.len == 0 || t.len > PL_IFPP_BATCH_ID_MAX) {
        rc = PL_ERR_DER_VALUE;
        goto out;
    }
    if ((rc = pl_der_get_utf8(&t, out->batch_id, sizeof(out->batch_id))))
        goto out;
    if ((rc = pl_der_expect(&s, T_EID, &t))
        || (rc = pl_der_get_fixed(&t, out->eid, PL_IFPP_EID_LEN)))
        goto out;
    if ((rc = pl_der_expect(&s, T_OTK_ID, &t)) || (rc = get_u16(&t, &out->otk_id)))
        goto out;
    if ((rc = pl_der_expect(&s, T_OTK_PK_HASH, &t))
        || (rc = pl_der_get_fixed(&t, out->otpk_hash, PL_SHA256_LEN)))
        goto out;
    if ((rc = pl_der_expect(&s, T_TID, &t))
        || (rc = pl_der_get_octets(&t, 1, PL_IFPP_TID_MAX, &out->tid, &out->tid_len)))
        goto out;
    if ((rc = pl_der_expect(&s, T_CURVE, &t)) || (rc = pl_der_get_uint(&t, &v)))
        goto out;
    if (v == (uint64_t)PL_CURVE_P256)
        out->curve = PL_CURVE_P256;
    else if (v == (uint64_t)PL_CURVE_BP256R1)
        out->curve = PL_CURVE_BP256R1;
    else {
        rc = PL_ERR_UNSUPPORTED;
        goto out;
    }
    if ((rc = pl_der_expect(&s, T_NOT_AFTER, &t)) || (rc = pl_der_get_uint(&t, &out->not_after)))
        goto out;
    if ((rc = pl_der_expect(&s, T_KEY_MAKER_SEQ, &t))
        || (rc = pl_der_get_uint(&t, &out->key_maker_seq)))
        goto out;
    if ((rc = pl_der_expect(&s, T_DPF_CHAIN, &t))
        || (rc = pl_ifpp_chain_decode(&s, &t, &out->dpf_chain)))
        goto out;
    if ((rc = pl_der_expect(&s, PL_TAG_IFPP_BPP, &t)))
        goto out;
    if (t.raw_len > PL_IFPP_BPP_MAX) {
        rc = PL_ERR_OVERFLOW;
        goto out;
    }
    if ((rc = pl_der_validate(t.raw, t.raw_len, 0)))
        goto out;
    out->bpp = t.raw;
    out->bpp_len = t.raw_len;
    if ((rc = pl_der_finish(&s)))
        goto out;

    /* IFPP.md §6.1: transactionId = the ISCR transactionId. */
    if ((rc = bpp_iscr_tid(out->bpp, out->bpp_len, &iscr_tid, &iscr_tid_len)))
        goto out;
    if (!tid_equal(out->tid, out->tid_len, iscr_tid, iscr_tid_len)) {
        rc = PL_ERR_MALFORMED;
        goto out;
    }
    out->raw = outer.raw;
    out->raw_len = outer.raw_len;
    out->signed_raw = tbs.raw;
    out->signed_raw_len = tbs.raw_len;
    rc = PL_OK;
out:
    return rc;
}

/* Field checks shared by the encoders: PL_OK or PL_ERR_INVAL. */
static int pkg_check_fields(const struct pl_ifpp_pkg *in, size_t *batch_len)
{
    const uint8_t *iscr_tid;
    size_t iscr_tid_len;
    const char *nul = memchr(in->batch_id, '\0', sizeof(in->batch_id));
    if (!nul || nul == in->batch_id)
        return PL_ERR_INVAL;
    *batch_len = (size_t)(nul - in->batch_id);
    if (!in->tid || in->tid_len == 0 || in->tid_len > PL_IFPP_TID_MAX)
        return PL_ERR_INVAL;
    if (in->curve != PL_CURVE_P256 && in->curve != PL_CURVE_BP256R1)
        return PL_ERR_INVAL;
    if (!in->bpp || in->bpp_len == 0 || in->bpp_len > PL_IFPP_BPP_MAX)
        return PL_ERR_INVAL;
    if (bpp_check(in->bpp, in->bpp_len) != PL_OK)
        return PL_ERR_INVAL;
    if (bpp_iscr_tid(in->bpp, in->bpp_len, &iscr_tid, &iscr_tid_len) != PL_OK)
        return PL_ERR_INVAL;
    if (!tid_equal(in->tid, in->tid_len, iscr_tid, iscr_tid_len))
        return PL_ERR_INVAL;
    return PL_OK;
}

int pl_ifpp_pkg_encode_tbs(const struct pl_ifpp_pkg *in, struct pl_wr *w)
{
    size_t batch_len = 0;
    if (!w)
        return PL_ERR_INVAL;
    if (!in)
        return wr_fail(w, PL_ERR_INVAL);
    int rc = pkg_check_fields(in, &batch_len);
    if (rc)
        return wr_fail(w, rc);
    size_t mark = pl_der_begin(w, PL_TAG_IFPP_PACKAGE_SIGNED);
    pl_der_put_uint(w, T_VERSION, PL_IFPP_PKG_VERSION);
    pl_der_put_tlv(w, T_PACKAGE_ID, in->package_id, PL_IFPP_PACKAGE_ID_LEN);
    pl_der_put_utf8(w, T_BATCH_ID, in->batch_id); /* rejects invalid UTF-8 */
    pl_der_put_tlv(w, T_EID, in->eid, PL_IFPP_EID_LEN);
    pl_der_put_uint(w, T_OTK_ID, in->otk_id);
    pl_der_put_tlv(w, T_OTK_PK_HASH, in->otpk_hash, PL_SHA256_LEN);
    pl_der_put_tlv(w, T_TID, in->tid, in->tid_len);
    pl_der_put_uint(w, T_CURVE, (uint64_t)in->curve);
    pl_der_put_uint(w, T_NOT_AFTER, in->not_after);
    pl_der_put_uint(w, T_KEY_MAKER_SEQ, in->key_maker_seq);
    if ((rc = pl_ifpp_chain_encode(w, T_DPF_CHAIN, &in->dpf_chain)))
        return rc;
    pl_wr_bytes(w, in->bpp, in->bpp_len);
    return pl_der_end(w, mark);
}

/* Writes 'FF70' { tbs, '5F37' sig }; signs the tbs in place when key is set. */
static int pkg_encode(const struct pl_ifpp_pkg *in, const struct pl_eckey *key,
                      const struct pl_rng *rng, struct pl_wr *w)
{
    uint8_t sig[PL_ECDSA_SIG_LEN];
    int rc = PL_ERR_INTERNAL;
    if (!w)
        return PL_ERR_INVAL;
    if (!in)
        return wr_fail(w, PL_ERR_INVAL);
    size_t mark = pl_der_begin(w, PL_TAG_IFPP_PACKAGE);
    size_t off = w->len;
    if ((rc = pl_ifpp_pkg_encode_tbs(in, w)))
        goto out;
    if (key) {
        if ((rc = pl_ecdsa_sign(key, w->buf + off, w->len - off, rng, sig))) {
            rc = wr_fail(w, rc);
            goto out;
        }
    } else {
        memcpy(sig, in->env_sig, sizeof(sig));
    }
    pl_der_put_tlv(w, PL_TAG_IFPP_SIGNATURE, sig, sizeof(sig));
    rc = pl_der_end(w, mark);
out:
    return rc;
}

int pl_ifpp_pkg_encode(const struct pl_ifpp_pkg *in, struct pl_wr *w)
{
    return pkg_encode(in, NULL, NULL, w);
}

int pl_ifpp_pkg_encode_sign(const struct pl_ifpp_pkg *in, const struct pl_eckey *km_key,
                            const struct pl_rng *rng, struct pl_wr *w)
{
    if (!km_key) {
        if (w)
            pl_wr_fail(w, PL_ERR_INVAL);
        return PL_ERR_INVAL;
    }
    return pkg_encode(in, km_key, rng, w);
}

int pl_ifpp_pkg_verify(const struct pl_ifpp_pkg *pkg, const struct pl_eckey *km_pub)
{
    if (!pkg || !km_pub || !pkg->signed_raw || pkg->signed_raw_len == 0)
        return PL_ERR_INVAL;
    return pl_ecdsa_verify(km_pub, pkg->signed_raw, pkg->signed_raw_len, pkg->env_sig);
}

int pl_ifpp_pkg_check_target(const struct pl_ifpp_pkg *pkg, const uint8_t eid[PL_IFPP_EID_LEN],
                             uint16_t otk_id, const uint8_t otpk[PL_EC_PUB_LEN])
{
    uint8_t h[PL_SHA256_LEN];
    int rc = PL_ERR_INTERNAL;
    if (!pkg || !eid || !otpk)
        return PL_ERR_INVAL;
    if (memcmp(pkg->eid, eid, PL_IFPP_EID_LEN) != 0 || pkg->otk_id != otk_id)
        return PL_ERR_DENIED;
    if ((rc = pl_sha256(otpk, PL_EC_PUB_LEN, h)))
        return rc;
    return memcmp(h, pkg->otpk_hash, PL_SHA256_LEN) == 0 ? PL_OK : PL_ERR_DENIED;
}

int pl_ifpp_pkg_check_time(const struct pl_ifpp_pkg *pkg, uint64_t now)
{
    if (!pkg)
        return PL_ERR_INVAL;
    return now <= pkg->not_after ? PL_OK : PL_ERR_EXPIRED;
}
