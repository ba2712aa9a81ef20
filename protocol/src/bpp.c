/* GSMA SGP.22 v2.5 §2.5.4 BoundProfilePackage (RSPDefinitions: BoundProfilePackage,
 * InitialiseSecureChannelRequest, ControlRefTemplate, ConfigureISDPRequest,
 * StoreMetadataRequest, ReplaceSessionKeysRequest), §5.5.1 smdpSign data, §5.7.6
 * ES10b.LoadBoundProfilePackage segmentation. provline reference: IFPP.md §5.1, §5.2, §5.7. */
#include "provline/protocol/bpp.h"

#include <string.h>

#include "provline/protocol/bsp.h"
#include "provline/protocol/der.h"
#include "provline/protocol/rd.h"

/* Tags inside the ISCR (SGP.22 v2.5 ASN.1, AUTOMATIC TAGS do not apply: every component
 * carries an explicit tag). */
#define TAG_REMOTE_OP_ID 0x82u /* RemoteOpId ::= [2] INTEGER */
#define TAG_TID 0x80u          /* transactionId [0] */
#define TAG_CRT 0xA6u          /* controlRefTemplate [6] IMPLICIT SEQUENCE */
#define TAG_CRT_KEY_TYPE 0x80u
#define TAG_CRT_KEY_LEN 0x81u
#define TAG_CRT_HOST_ID 0x84u
#define TAG_OTPK 0x5F49u /* [APPLICATION 73] */
#define TAG_SIGN 0x5F37u /* [APPLICATION 55] */

#define REMOTE_OP_INSTALL_BPP 1 /* installBoundProfilePackage(1) */
#define CRT_KEY_TYPE_AES 0x88u  /* GP Card Spec Table 11-16 */
#define CRT_KEY_LEN_16 0x10u

#define TAG_SEQ87_FIRST 0xA0u
#define TAG_SEQ88 0xA1u
#define TAG_SEQ87_SECOND 0xA2u
#define TAG_SEQ86 0xA3u
#define TAG_SEG86 0x86u
#define TAG_SEG87 0x87u
#define TAG_SEG88 0x88u

#define TAG_DP_PROPRIETARY 0xB8u /* dpProprietaryData [24] */
#define TAG_DP_OID 0x80u         /* DpProprietaryData.dpOid: AUTOMATIC TAGS give it [0] */
#define TAG_ICCID 0x5Au          /* Iccid ::= [APPLICATION 26] */
#define TAG_SPN 0x91u            /* serviceProviderName [17] */
#define TAG_PROFILE_NAME 0x92u   /* profileName [18] */
#define TAG_RSK_MCV 0x80u        /* ReplaceSessionKeysRequest: automatic tags [0] [1] [2] */
#define TAG_RSK_ENC 0x81u
#define TAG_RSK_MAC 0x82u

#define SMR_SPN_CHARS 32u  /* UTF8String (SIZE(0..32)) */
#define SMR_NAME_CHARS 64u /* UTF8String (SIZE(0..64)) */

/* Marks w failed with rc (first error wins) and returns w's status. */
static int fail(struct pl_wr *w, int rc)
{
    pl_wr_fail(w, rc);
    return pl_wr_status(w);
}

/* ---- InitialiseSecureChannelRequest ---- */

static int iscr_parse(const struct pl_der *parent, const struct pl_tlv *t, struct pl_iscr *out)
{
    struct pl_der d, crt;
    struct pl_tlv op, tid, a6, kt, kl, hid, otpk, sign;
    int64_t opv;
    uint8_t b;
    size_t n;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = pl_der_enter(parent, t, &d)))
        return rc;
    if ((rc = pl_der_expect(&d, TAG_REMOTE_OP_ID, &op)))
        return rc;
    if ((rc = pl_der_get_int(&op, &opv)))
        return rc;
    /* SGP.22 §5.5.1: "remoteOpId ... value SHALL be set to installBoundProfilePackage" */
    if (opv != REMOTE_OP_INSTALL_BPP)
        return PL_ERR_UNSUPPORTED;
    if ((rc = pl_der_expect(&d, TAG_TID, &tid)))
        return rc;
    if ((rc = pl_der_get_octets(&tid, 1, PL_BPP_TID_MAX, &out->tid, &out->tid_len)))
        return rc;

    if ((rc = pl_der_expect(&d, TAG_CRT, &a6)))
        return rc;
    if ((rc = pl_der_enter(&d, &a6, &crt)))
        return rc;
    if ((rc = pl_der_expect(&crt, TAG_CRT_KEY_TYPE, &kt)))
        return rc;
    if ((rc = pl_der_get_fixed(&kt, &b, 1)))
        return rc;
    if (b != CRT_KEY_TYPE_AES)
        return PL_ERR_UNSUPPORTED;
    if ((rc = pl_der_expect(&crt, TAG_CRT_KEY_LEN, &kl)))
        return rc;
    if ((rc = pl_der_get_fixed(&kl, &b, 1)))
        return rc;
    if (b != CRT_KEY_LEN_16)
        return PL_ERR_UNSUPPORTED;
    if ((rc = pl_der_expect(&crt, TAG_CRT_HOST_ID, &hid)))
        return rc;
    if ((rc = pl_der_get_octets(&hid, 1, PL_BPP_HOST_ID_MAX, &out->host_id, &out->host_id_len)))
        return rc;
    if ((rc = pl_der_finish(&crt)))
        return rc;

    if ((rc = pl_der_expect(&d, TAG_OTPK, &otpk)))
        return rc;
    if ((rc = pl_der_get_octets(&otpk, PL_EC_PUB_LEN, PL_EC_PUB_LEN, &out->smdp_otpk, &n)))
        return rc;
    {
        struct pl_rd r;
        pl_rd_init(&r, otpk.value, otpk.len);
        if ((rc = pl_rd_u8(&r, &b)))
            return rc;
        if (b != 0x04u) /* uncompressed point 04 || X || Y */
            return PL_ERR_DER_VALUE;
    }
    if ((rc = pl_der_expect(&d, TAG_SIGN, &sign)))
        return rc;
    if ((rc = pl_der_get_octets(&sign, PL_ECDSA_SIG_LEN, PL_ECDSA_SIG_LEN, &out->smdp_sign, &n)))
        return rc;
    if ((rc = pl_der_finish(&d)))
        return rc;

    out->raw = t->raw;
    out->raw_len = t->raw_len;
    /* The four TLVs before smdpSign were read back to back from one buffer. */
    out->signed_raw = op.raw;
    out->signed_raw_len = op.raw_len + tid.raw_len + a6.raw_len + otpk.raw_len;
    return PL_OK;
}

int pl_iscr_decode(const uint8_t *p, size_t len, struct pl_iscr *out)
{
    struct pl_der top;
    struct pl_tlv t;
    int rc;
    memset(out, 0, sizeof(*out));
    pl_der_init(&top, p, len);
    if ((rc = pl_der_expect(&top, PL_TAG_ISCR, &t)))
        return rc;
    if ((rc = pl_der_finish(&top)))
        return rc;
    if ((rc = iscr_parse(&top, &t, out)))
        memset(out, 0, sizeof(*out));
    return rc;
}

static bool point_ok(const uint8_t *pt)
{
    return pt != NULL && pt[0] == 0x04u;
}

static int iscr_fields_check(const struct pl_iscr *in, bool need_sign)
{
    if (!in->tid || in->tid_len < 1 || in->tid_len > PL_BPP_TID_MAX)
        return PL_ERR_INVAL;
    if (!in->host_id || in->host_id_len < 1 || in->host_id_len > PL_BPP_HOST_ID_MAX)
        return PL_ERR_INVAL;
    if (!point_ok(in->smdp_otpk))
        return PL_ERR_INVAL;
    if (need_sign && !in->smdp_sign)
        return PL_ERR_INVAL;
    return PL_OK;
}

/* 82 01 01 || 80 L tid || A6 L (80 01 88 | 81 01 10 | 84 L hostId) || 5F49 41 otPK.DP */
static void put_iscr_head(struct pl_wr *w, const struct pl_iscr *in)
{
    const uint8_t kt = CRT_KEY_TYPE_AES, kl = CRT_KEY_LEN_16;
    pl_der_put_int(w, TAG_REMOTE_OP_ID, REMOTE_OP_INSTALL_BPP);
    pl_der_put_tlv(w, TAG_TID, in->tid, in->tid_len);
    size_t m = pl_der_begin(w, TAG_CRT);
    pl_der_put_tlv(w, TAG_CRT_KEY_TYPE, &kt, 1);
    pl_der_put_tlv(w, TAG_CRT_KEY_LEN, &kl, 1);
    pl_der_put_tlv(w, TAG_CRT_HOST_ID, in->host_id, in->host_id_len);
    pl_der_end(w, m);
    pl_der_put_tlv(w, TAG_OTPK, in->smdp_otpk, PL_EC_PUB_LEN);
}

int pl_iscr_encode(const struct pl_iscr *in, struct pl_wr *w)
{
    int rc = pl_wr_status(w);
    if (rc)
        return rc;
    if ((rc = iscr_fields_check(in, true)))
        return fail(w, rc);
    size_t m = pl_der_begin(w, PL_TAG_ISCR);
    put_iscr_head(w, in);
    pl_der_put_tlv(w, TAG_SIGN, in->smdp_sign, PL_ECDSA_SIG_LEN);
    pl_der_end(w, m);
    return pl_wr_status(w);
}

int pl_bpp_iscr_signed_data(const struct pl_iscr *iscr, const uint8_t euicc_otpk[PL_EC_PUB_LEN],
                            struct pl_wr *w)
{
    int rc = pl_wr_status(w);
    if (rc)
        return rc;
    if (!point_ok(euicc_otpk))
        return fail(w, PL_ERR_INVAL);
    if (iscr->signed_raw) {
        /* Received bytes, never re-encoded (STYLE.md §7.3 rule 3). */
        pl_wr_bytes(w, iscr->signed_raw, iscr->signed_raw_len);
    } else {
        if ((rc = iscr_fields_check(iscr, false)))
            return fail(w, rc);
        put_iscr_head(w, iscr);
    }
    pl_der_put_tlv(w, TAG_OTPK, euicc_otpk, PL_EC_PUB_LEN);
    return pl_wr_status(w);
}

/* Enough for the signed data: 3 + 18 + 2 + 3 + 3 + 18 + 2 * 68. */
#define ISCR_TBS_MAX 256u

int pl_iscr_sign(const struct pl_iscr *iscr, const uint8_t euicc_otpk[PL_EC_PUB_LEN],
                 const struct pl_eckey *dp_key, const struct pl_rng *rng,
                 uint8_t sig[PL_ECDSA_SIG_LEN])
{
    uint8_t buf[ISCR_TBS_MAX];
    struct pl_wr w;
    int rc = PL_ERR_INTERNAL;

    pl_wr_init_fixed(&w, buf, sizeof(buf));
    if ((rc = pl_bpp_iscr_signed_data(iscr, euicc_otpk, &w)))
        goto out;
    rc = pl_ecdsa_sign(dp_key, w.buf, w.len, rng, sig);
out:
    return rc;
}

int pl_iscr_verify(const struct pl_iscr *iscr, const uint8_t euicc_otpk[PL_EC_PUB_LEN],
                   const struct pl_eckey *dp_pub)
{
    uint8_t buf[ISCR_TBS_MAX];
    struct pl_wr w;
    int rc = PL_ERR_INTERNAL;

    if (!iscr->smdp_sign)
        return PL_ERR_INVAL;
    pl_wr_init_fixed(&w, buf, sizeof(buf));
    if ((rc = pl_bpp_iscr_signed_data(iscr, euicc_otpk, &w)))
        goto out;
    rc = pl_ecdsa_verify(dp_pub, w.buf, w.len, iscr->smdp_sign);
out:
    return rc;
}

/* ---- BoundProfilePackage ---- */

/* A BSP segment: within the 1020-byte limit (SGP.22 v2.5 §2.5.5 via IFPP.md §5.4) and
 * long enough to hold the 8-byte MAC. */
static int seg_check(const struct pl_tlv *s)
{
    if (s->raw_len > PL_BSP_MAX_SEGMENT)
        return PL_ERR_OVERFLOW;
    if (s->len < PL_BSP_MAC_LEN)
        return PL_ERR_DER_VALUE;
    return PL_OK;
}

static int parse_list(const struct pl_der *parent, const struct pl_tlv *list, uint32_t tag,
                      struct pl_bpp_seg *segs, size_t cap, size_t *n)
{
    struct pl_der d;
    int rc;
    *n = 0;
    if ((rc = pl_der_enter(parent, list, &d)))
        return rc;
    while (!pl_der_done(&d)) {
        struct pl_tlv s;
        if ((rc = pl_der_expect(&d, tag, &s)))
            return rc;
        if (*n == cap)
            return PL_ERR_OVERFLOW;
        if ((rc = seg_check(&s)))
            return rc;
        segs[*n].tlv = s.raw;
        segs[*n].len = s.raw_len;
        (*n)++;
    }
    /* An empty list would leave the profile without ConfigureISDP, StoreMetadata,
     * ReplaceSessionKeys or any profile element (SGP.22 §2.5.4). */
    return *n ? PL_OK : PL_ERR_DER_VALUE;
}

int pl_bpp_decode(const uint8_t *p, size_t len, struct pl_bpp *out)
{
    struct pl_der d;
    struct pl_tlv t, iscr, a0, a1, a2, a3;
    bool has_a2;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = pl_der_open_one(p, len, PL_TAG_BPP, &t, &d)))
        goto fail;
    if ((rc = pl_der_expect(&d, PL_TAG_ISCR, &iscr)))
        goto fail;
    if ((rc = iscr_parse(&d, &iscr, &out->iscr)))
        goto fail;
    if ((rc = pl_der_expect(&d, TAG_SEQ87_FIRST, &a0)))
        goto fail;
    if ((rc = parse_list(&d, &a0, TAG_SEG87, out->first87, PL_BPP_MAX_87_FIRST, &out->n87_first)))
        goto fail;
    if ((rc = pl_der_expect(&d, TAG_SEQ88, &a1)))
        goto fail;
    if ((rc = parse_list(&d, &a1, TAG_SEG88, out->seq88, PL_BPP_MAX_88, &out->n88)))
        goto fail;
    if ((rc = pl_der_optional(&d, TAG_SEQ87_SECOND, &a2, &has_a2)))
        goto fail;
    if (has_a2) {
        rc = parse_list(&d, &a2, TAG_SEG87, out->second87, PL_BPP_MAX_87_SECOND, &out->n87_second);
        if (rc)
            goto fail;
    }
    if ((rc = pl_der_expect(&d, TAG_SEQ86, &a3)))
        goto fail;
    if ((rc = parse_list(&d, &a3, TAG_SEG86, out->seq86, PL_BPP_MAX_86, &out->n86)))
        goto fail;
    if ((rc = pl_der_finish(&d)))
        goto fail;

    out->has_second87 = has_a2;
    out->raw = t.raw;
    out->raw_len = t.raw_len;
    out->hdr_len = t.raw_len - t.len;
    out->a0_len = a0.raw_len;
    out->a1_hdr_len = a1.raw_len - a1.len;
    out->a2_len = has_a2 ? a2.raw_len : 0;
    out->a3_hdr_len = a3.raw_len - a3.len;
    return PL_OK;
fail:
    memset(out, 0, sizeof(*out));
    return rc;
}

static int put_list(struct pl_wr *w, uint32_t list_tag, uint32_t tag, const struct pl_bpp_seg *segs,
                    size_t n, size_t cap)
{
    int rc;
    if (n == 0 || n > cap)
        return fail(w, PL_ERR_INVAL);
    for (size_t i = 0; i < n; i++) {
        struct pl_tlv s;
        if (!segs[i].tlv)
            return fail(w, PL_ERR_INVAL);
        if ((rc = pl_der_parse_one(segs[i].tlv, segs[i].len, tag, &s)))
            return fail(w, rc);
        if ((rc = seg_check(&s)))
            return fail(w, rc);
    }
    size_t m = pl_der_begin(w, list_tag);
    for (size_t i = 0; i < n; i++)
        pl_wr_bytes(w, segs[i].tlv, segs[i].len);
    return pl_der_end(w, m);
}

int pl_bpp_encode(const struct pl_bpp *in, struct pl_wr *w)
{
    int rc = pl_wr_status(w);
    if (rc)
        return rc;
    size_t m = pl_der_begin(w, PL_TAG_BPP);
    if ((rc = pl_iscr_encode(&in->iscr, w)))
        return rc;
    put_list(w, TAG_SEQ87_FIRST, TAG_SEG87, in->first87, in->n87_first, PL_BPP_MAX_87_FIRST);
    put_list(w, TAG_SEQ88, TAG_SEG88, in->seq88, in->n88, PL_BPP_MAX_88);
    if (in->has_second87)
        put_list(w, TAG_SEQ87_SECOND, TAG_SEG87, in->second87, in->n87_second,
                 PL_BPP_MAX_87_SECOND);
    put_list(w, TAG_SEQ86, TAG_SEG86, in->seq86, in->n86, PL_BPP_MAX_86);
    pl_der_end(w, m);
    return pl_wr_status(w);
}

size_t pl_bpp_segment_count(const struct pl_bpp *bpp)
{
    return 3u + bpp->n88 + (bpp->has_second87 ? 1u : 0u) + 1u + bpp->n86;
}

static int take(struct pl_rd *r, size_t len, struct pl_bpp_span *s)
{
    s->off = r->pos;
    s->len = len;
    return pl_rd_bytes(r, len, &s->p);
}

int pl_bpp_segments(const struct pl_bpp *bpp, struct pl_bpp_span *spans, size_t cap, size_t *n)
{
    struct pl_rd r;
    size_t k = 0;
    int rc = PL_ERR_INTERNAL;

    *n = 0;
    if (!bpp->raw || !bpp->iscr.raw || bpp->n88 > PL_BPP_MAX_88 || bpp->n86 > PL_BPP_MAX_86)
        return PL_ERR_INVAL;
    if (pl_bpp_segment_count(bpp) > cap)
        return PL_ERR_OVERFLOW;
    pl_rd_init(&r, bpp->raw, bpp->raw_len);
    /* (1) BF36 tag+length plus the whole BF23 */
    if ((rc = take(&r, bpp->hdr_len + bpp->iscr.raw_len, &spans[k++])))
        goto out;
    /* (2) the whole A0 */
    if ((rc = take(&r, bpp->a0_len, &spans[k++])))
        goto out;
    /* (3) A1 tag+length; (4) each 88 */
    if ((rc = take(&r, bpp->a1_hdr_len, &spans[k++])))
        goto out;
    for (size_t i = 0; i < bpp->n88; i++)
        if ((rc = take(&r, bpp->seq88[i].len, &spans[k++])))
            goto out;
    /* (5) the whole A2 if present */
    if (bpp->has_second87 && (rc = take(&r, bpp->a2_len, &spans[k++])))
        goto out;
    /* (6) A3 tag+length; (7) each 86 */
    if ((rc = take(&r, bpp->a3_hdr_len, &spans[k++])))
        goto out;
    for (size_t i = 0; i < bpp->n86; i++)
        if ((rc = take(&r, bpp->seq86[i].len, &spans[k++])))
            goto out;
    if (!pl_rd_done(&r)) {
        rc = PL_ERR_INVAL; /* the struct does not describe bpp->raw */
        goto out;
    }
    *n = k;
    rc = PL_OK;
out:
    if (rc == PL_ERR_TRUNCATED)
        rc = PL_ERR_INVAL;
    return rc;
}

/* ---- ConfigureISDPRequest ---- */

/* A run of complete, valid DER TLVs filling the reader. */
static int check_tlv_run(struct pl_der *d)
{
    while (!pl_der_done(d)) {
        struct pl_tlv t;
        int rc = pl_der_next(d, &t);
        if (rc)
            return rc;
        if ((rc = pl_der_validate(t.raw, t.raw_len, PL_DER_MAX_DEPTH)))
            return rc;
    }
    return PL_OK;
}

int pl_configure_isdp_decode(const uint8_t *p, size_t len, struct pl_configure_isdp *out)
{
    struct pl_der d, dp;
    struct pl_tlv t, b8, oid;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = pl_der_open_one(p, len, PL_TAG_CONFIGURE_ISDP, &t, &d)))
        return rc;
    if ((rc = pl_der_optional(&d, TAG_DP_PROPRIETARY, &b8, &out->has_dp)))
        return rc;
    if (out->has_dp) {
        /* "maximum size including tag and length field: 128 bytes" */
        if (b8.raw_len > PL_CONFIGURE_ISDP_DP_MAX)
            return PL_ERR_DER_VALUE;
        if ((rc = pl_der_enter(&d, &b8, &dp)))
            return rc;
        if ((rc = pl_der_expect(&dp, TAG_DP_OID, &oid)))
            return rc;
        if ((rc = pl_der_check_oid(&oid)))
            return rc;
        out->dp_oid = oid.value;
        out->dp_oid_len = oid.len;
        out->dp_extra = pl_rd_ptr(&dp.rd);
        out->dp_extra_len = pl_rd_left(&dp.rd);
        if ((rc = check_tlv_run(&dp)))
            return rc;
    }
    return pl_der_finish(&d);
}

int pl_configure_isdp_encode(const struct pl_configure_isdp *in, struct pl_wr *w)
{
    int rc = pl_wr_status(w);
    if (rc)
        return rc;
    size_t m = pl_der_begin(w, PL_TAG_CONFIGURE_ISDP);
    if (in->has_dp) {
        struct pl_tlv oid = {.tag = TAG_DP_OID, .value = in->dp_oid, .len = in->dp_oid_len};
        struct pl_der extra;
        if (!in->dp_oid || (rc = pl_der_check_oid(&oid)))
            return fail(w, rc ? rc : PL_ERR_INVAL);
        if (in->dp_extra_len && !in->dp_extra)
            return fail(w, PL_ERR_INVAL);
        pl_der_init(&extra, in->dp_extra, in->dp_extra_len);
        if ((rc = check_tlv_run(&extra)))
            return fail(w, rc);
        size_t start = w->len;
        size_t m8 = pl_der_begin(w, TAG_DP_PROPRIETARY);
        pl_der_put_tlv(w, TAG_DP_OID, in->dp_oid, in->dp_oid_len);
        pl_wr_bytes(w, in->dp_extra, in->dp_extra_len);
        pl_der_end(w, m8);
        if (pl_wr_status(w) == PL_OK && w->len - start > PL_CONFIGURE_ISDP_DP_MAX)
            return fail(w, PL_ERR_INVAL);
    }
    pl_der_end(w, m);
    return pl_wr_status(w);
}

/* ---- StoreMetadataRequest ---- */

static const uint32_t smr_tags[PL_SMR_OPT_COUNT] = {
    [PL_SMR_ICON_TYPE] = 0x93u,      /* [19] IconType INTEGER */
    [PL_SMR_ICON] = 0x94u,           /* [20] OCTET STRING (SIZE(0..1024)) */
    [PL_SMR_PROFILE_CLASS] = 0x95u,  /* [21] ProfileClass INTEGER */
    [PL_SMR_NOTIF_CONFIG] = 0xB6u,   /* [22] SEQUENCE OF NotificationConfigurationInformation */
    [PL_SMR_PROFILE_OWNER] = 0xB7u,  /* [23] OperatorId */
    [PL_SMR_PPR] = 0x99u,            /* [25] PprIds BIT STRING */
    [PL_SMR_SSD_STORED] = 0xBF22u,   /* [34] VendorSpecificExtension */
    [PL_SMR_SSD_NOT_STORED] = 0xBF23u /* [35] VendorSpecificExtension */
};

uint32_t pl_smr_opt_tag(enum pl_smr_opt o)
{
    return (unsigned)o < PL_SMR_OPT_COUNT ? smr_tags[o] : 0;
}

/* Content checks for one optional field (t carries the right tag already). */
static int smr_opt_check(enum pl_smr_opt o, const struct pl_tlv *t)
{
    int64_t v;
    const uint8_t *bits;
    size_t nb;
    unsigned unused;
    switch (o) {
    case PL_SMR_ICON_TYPE:
    case PL_SMR_PROFILE_CLASS:
        /* Known leniency: profileClass is DEFAULT operational(2), which X.690 §11.5 says a
         * DER encoder omits; an explicit '95 01 02' is still accepted because bpp_bind.c
         * emits it today. Tighten here once it omits the default. */
        return pl_der_get_int(t, &v);
    case PL_SMR_ICON:
        return t->len <= PL_SMR_ICON_MAX ? PL_OK : PL_ERR_DER_VALUE;
    case PL_SMR_PPR:
        return pl_der_get_bits(t, &bits, &nb, &unused);
    case PL_SMR_NOTIF_CONFIG:
    case PL_SMR_PROFILE_OWNER:
    case PL_SMR_SSD_STORED:
    case PL_SMR_SSD_NOT_STORED:
        return pl_der_validate(t->raw, t->raw_len, PL_DER_MAX_DEPTH);
    case PL_SMR_OPT_COUNT:
    default:
        return PL_ERR_INTERNAL;
    }
}

/* Number of characters in a valid, NUL-terminated UTF-8 string. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (size_t i = 0; s[i] != '\0'; i++)
        if (((unsigned char)s[i] & 0xC0u) != 0x80u)
            n++;
    return n;
}

static int get_bounded_utf8(const struct pl_tlv *t, char *out, size_t cap, size_t max_chars)
{
    int rc = pl_der_get_utf8(t, out, cap);
    if (rc == PL_ERR_OVERFLOW)
        return PL_ERR_DER_VALUE;
    if (rc)
        return rc;
    return utf8_chars(out) <= max_chars ? PL_OK : PL_ERR_DER_VALUE;
}

int pl_smr_decode(const uint8_t *p, size_t len, struct pl_smr *out)
{
    struct pl_der d;
    struct pl_tlv t, f;
    bool present;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = pl_der_open_one(p, len, PL_TAG_STORE_METADATA, &t, &d)))
        goto fail;
    if ((rc = pl_der_expect(&d, TAG_ICCID, &f)) || (rc = pl_der_get_fixed(&f, out->iccid, PL_ICCID_LEN)))
        goto fail;
    if ((rc = pl_der_expect(&d, TAG_SPN, &f)))
        goto fail;
    if ((rc = get_bounded_utf8(&f, out->spn, sizeof(out->spn), SMR_SPN_CHARS)))
        goto fail;
    if ((rc = pl_der_expect(&d, TAG_PROFILE_NAME, &f)))
        goto fail;
    if ((rc = get_bounded_utf8(&f, out->name, sizeof(out->name), SMR_NAME_CHARS)))
        goto fail;
    for (unsigned o = 0; o < PL_SMR_OPT_COUNT; o++) {
        if ((rc = pl_der_optional(&d, smr_tags[o], &f, &present)))
            goto fail;
        if (!present)
            continue;
        if ((rc = smr_opt_check((enum pl_smr_opt)o, &f)))
            goto fail;
        out->opt[o].tlv = f.raw;
        out->opt[o].len = f.raw_len;
    }
    /* "icon ... SHALL only be present if iconType is present" */
    if (out->opt[PL_SMR_ICON].tlv && !out->opt[PL_SMR_ICON_TYPE].tlv) {
        rc = PL_ERR_DER_VALUE;
        goto fail;
    }
    if ((rc = pl_der_finish(&d)))
        goto fail;
    return PL_OK;
fail:
    memset(out, 0, sizeof(*out));
    return rc;
}

static int smr_check_str(const char *s, size_t max_bytes, size_t max_chars)
{
    size_t n = 0;
    while (n <= max_bytes && s[n] != '\0')
        n++;
    if (n > max_bytes)
        return PL_ERR_INVAL;
    return utf8_chars(s) <= max_chars ? PL_OK : PL_ERR_INVAL;
}

int pl_smr_encode(const struct pl_smr *in, struct pl_wr *w)
{
    int rc = pl_wr_status(w);
    if (rc)
        return rc;
    if ((rc = smr_check_str(in->spn, PL_SMR_SPN_MAX, SMR_SPN_CHARS))
        || (rc = smr_check_str(in->name, PL_SMR_NAME_MAX, SMR_NAME_CHARS)))
        return fail(w, rc);
    if (in->opt[PL_SMR_ICON].tlv && !in->opt[PL_SMR_ICON_TYPE].tlv)
        return fail(w, PL_ERR_INVAL);
    for (unsigned o = 0; o < PL_SMR_OPT_COUNT; o++) {
        struct pl_tlv f;
        if (!in->opt[o].tlv)
            continue;
        if ((rc = pl_der_parse_one(in->opt[o].tlv, in->opt[o].len, smr_tags[o], &f)))
            return fail(w, rc);
        if ((rc = smr_opt_check((enum pl_smr_opt)o, &f)))
            return fail(w, rc);
    }
    size_t m = pl_der_begin(w, PL_TAG_STORE_METADATA);
    pl_der_put_tlv(w, TAG_ICCID, in->iccid, PL_ICCID_LEN);
    pl_der_put_utf8(w, TAG_SPN, in->spn);
    pl_der_put_utf8(w, TAG_PROFILE_NAME, in->name);
    for (unsigned o = 0; o < PL_SMR_OPT_COUNT; o++)
        if (in->opt[o].tlv)
            pl_wr_bytes(w, in->opt[o].tlv, in->opt[o].len);
    pl_der_end(w, m);
    return pl_wr_status(w);
}

/* ---- ReplaceSessionKeysRequest ---- */

int pl_rsk_decode(const uint8_t *p, size_t len, struct pl_rsk *out)
{
    struct pl_der d;
    struct pl_tlv t, f;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = pl_der_open_one(p, len, PL_TAG_REPLACE_KEYS, &t, &d)))
        goto fail;
    if ((rc = pl_der_expect(&d, TAG_RSK_MCV, &f)) || (rc = pl_der_get_fixed(&f, out->mcv, PL_RSK_LEN)))
        goto fail;
    if ((rc = pl_der_expect(&d, TAG_RSK_ENC, &f))
        || (rc = pl_der_get_fixed(&f, out->ppk_enc, PL_RSK_LEN)))
        goto fail;
    if ((rc = pl_der_expect(&d, TAG_RSK_MAC, &f))
        || (rc = pl_der_get_fixed(&f, out->ppk_mac, PL_RSK_LEN)))
        goto fail;
    if ((rc = pl_der_finish(&d)))
        goto fail;
    return PL_OK;
fail:
    memset(out, 0, sizeof(*out));
    return rc;
}

int pl_rsk_encode(const struct pl_rsk *in, struct pl_wr *w)
{
    int rc = pl_wr_status(w);
    if (rc)
        return rc;
    size_t m = pl_der_begin(w, PL_TAG_REPLACE_KEYS);
    pl_der_put_tlv(w, TAG_RSK_MCV, in->mcv, PL_RSK_LEN);
    pl_der_put_tlv(w, TAG_RSK_ENC, in->ppk_enc, PL_RSK_LEN);
    pl_der_put_tlv(w, TAG_RSK_MAC, in->ppk_mac, PL_RSK_LEN);
    pl_der_end(w, m);
    return pl_wr_status(w);
}
