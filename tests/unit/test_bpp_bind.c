/* Unit tests: SGP.22 v2.5 §2.5.4 BPP generation (protocol/bpp_bind.h) checked from the
 * eUICC side: ECDH with otSK.EUICC, BSP unwrap of every segment, UPP byte for byte;
 * SAIP ProfileHeader ICCID extraction over the TS.48 profiles. */
#include "pl_test.h"
#include "provline/protocol/bpp.h"
#include "provline/protocol/bpp_bind.h"
#include "provline/protocol/iccid.h"
#include "provline/protocol/bsp.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/secret.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t EID[16] = {0x89, 0x04, 0x90, 0x32, 0x12, 0x34, 0x51, 0x23,
                                0x45, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x35};
static const uint8_t HOST_ID[8] = {'H', 'O', 'S', 'T', 'I', 'D', '0', '1'};
static const uint8_t TID[16] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                                0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10};

static uint8_t *load_upp(const char *name, size_t *len)
{
    char rel[256], path[512];
    snprintf(rel, sizeof(rel), "tests/data/ts48/%s", name);
    uint8_t *b = pl_test_read_file(pl_test_src(path, sizeof(path), rel), len);
    cr_assert_not_null(b, "cannot read %s", path);
    return b;
}

struct bound {
    struct pl_eckey *dp;  /* SM-DPf key */
    struct pl_eckey *otk; /* eUICC one-time key pair */
    uint8_t otpk[PL_EC_PUB_LEN];
    struct pl_wr bpp;
};

static void bind_one(struct bound *b, enum pl_curve c, const uint8_t *upp, size_t len, bool rsk)
{
    struct pl_rng rng = PL_RNG_SYSTEM;
    cr_assert_eq(pl_eckey_generate(c, &rng, &b->dp), PL_OK);
    cr_assert_eq(pl_eckey_generate(c, &rng, &b->otk), PL_OK);
    cr_assert_eq(pl_eckey_public(b->otk, b->otpk), PL_OK);
    struct pl_bind_params p = {
        .curve = c,
        .dp_key = b->dp,
        .euicc_otpk = b->otpk,
        .eid = EID,
        .host_id = HOST_ID,
        .host_id_len = sizeof(HOST_ID),
        .tid = TID,
        .tid_len = sizeof(TID),
        .upp = upp,
        .upp_len = len,
        .spn = "provline test",
        .profile_name = "TS.48 generic",
        .profile_class = 2,
        .replace_session_keys = rsk,
        .rng = &rng,
    };
    pl_wr_init_dyn(&b->bpp, PL_BIND_BPP_MAX);
    cr_assert_eq(pl_bpp_bind(&p, &b->bpp), PL_OK);
}

static void bound_free(struct bound *b)
{
    pl_eckey_free(b->dp);
    pl_eckey_free(b->otk);
    pl_wr_free(&b->bpp);
}

/* The eUICC side of SGP.22 §5.5 / IFPP.md §6.2 (d): verify, derive, open every segment. */
static void open_as_euicc(const struct bound *b, const uint8_t *upp, size_t len, bool rsk)
{
    struct pl_bpp *bpp = calloc(1, sizeof(*bpp));
    cr_assert_not_null(bpp);
    cr_assert_eq(pl_bpp_decode(b->bpp.buf, b->bpp.len, bpp), PL_OK);
    cr_assert_eq(bpp->iscr.tid_len, sizeof(TID));
    cr_assert_eq(memcmp(bpp->iscr.tid, TID, sizeof(TID)), 0);
    /* smdpSign covers our otPK: verifies with it, fails with another key. */
    cr_assert_eq(pl_iscr_verify(&bpp->iscr, b->otpk, b->dp), PL_OK);
    uint8_t other[PL_EC_PUB_LEN];
    struct pl_eckey *o = NULL;
    struct pl_rng rng = PL_RNG_SYSTEM;
    cr_assert_eq(pl_eckey_generate(pl_eckey_curve(b->otk), &rng, &o), PL_OK);
    cr_assert_eq(pl_eckey_public(o, other), PL_OK);
    cr_assert_eq(pl_iscr_verify(&bpp->iscr, other, b->dp), PL_ERR_BAD_SIGNATURE);
    pl_eckey_free(o);

    uint8_t z[32];
    struct pl_bsp_keys k;
    struct pl_bsp s;
    cr_assert_eq(pl_ecdh(b->otk, bpp->iscr.smdp_otpk, z), PL_OK);
    cr_assert_eq(pl_bsp_derive(z, HOST_ID, sizeof(HOST_ID), EID, &k), PL_OK);
    pl_bsp_init(&s, &k);

    struct pl_wr pt;
    pl_wr_init_dyn(&pt, 1u << 20);
    cr_assert_eq(bpp->n87_first, 1);
    cr_assert_eq(pl_bsp_unwrap(&s, 0x87, true, bpp->first87[0].tlv, bpp->first87[0].len, &pt),
                 PL_OK);
    struct pl_configure_isdp cfg;
    cr_assert_eq(pl_configure_isdp_decode(pt.buf, pt.len, &cfg), PL_OK);
    pl_wr_reset(&pt);
    for (size_t i = 0; i < bpp->n88; i++)
        cr_assert_eq(pl_bsp_unwrap(&s, 0x88, false, bpp->seq88[i].tlv, bpp->seq88[i].len, &pt),
                     PL_OK);
    struct pl_smr smr;
    cr_assert_eq(pl_smr_decode(pt.buf, pt.len, &smr), PL_OK);
    uint8_t iccid[PL_ICCID_LEN];
    cr_assert_eq(pl_upp_iccid(upp, len, iccid), PL_OK);
    cr_assert_eq(memcmp(smr.iccid, iccid, sizeof(iccid)), 0);
    cr_assert_str_eq(smr.spn, "provline test");
    cr_assert_str_eq(smr.name, "TS.48 generic");
    cr_assert_not_null(smr.opt[PL_SMR_PROFILE_CLASS].tlv);
    pl_wr_reset(&pt);

    cr_assert_eq(bpp->has_second87, rsk);
    if (rsk) {
        cr_assert_eq(bpp->n87_second, 1);
        cr_assert_eq(pl_bsp_unwrap(&s, 0x87, true, bpp->second87[0].tlv, bpp->second87[0].len, &pt),
                     PL_OK);
        struct pl_rsk r;
        cr_assert_eq(pl_rsk_decode(pt.buf, pt.len, &r), PL_OK);
        struct pl_bsp_keys ppk;
        memcpy(ppk.mcv, r.mcv, 16);
        memcpy(ppk.s_enc, r.ppk_enc, 16);
        memcpy(ppk.s_mac, r.ppk_mac, 16);
        /* Fresh PPKs: never the session keys. */
        cr_assert_neq(memcmp(ppk.s_enc, k.s_enc, 16), 0);
        pl_bsp_replace(&s, &ppk);
        pl_wr_reset(&pt);
    }
    cr_assert_gt(bpp->n86, 1);
    for (size_t i = 0; i < bpp->n86; i++) {
        cr_assert_leq(bpp->seq86[i].len, 1020, "segment %zu is %zu bytes", i, bpp->seq86[i].len);
        cr_assert_eq(pl_bsp_unwrap(&s, 0x86, true, bpp->seq86[i].tlv, bpp->seq86[i].len, &pt),
                     PL_OK, "segment %zu", i);
    }
    cr_assert_eq(pt.len, len);
    cr_assert_eq(memcmp(pt.buf, upp, len), 0, "UPP differs after unwrap");
    /* Every ES10b command of the BPP (lpac order) is within one segment's limit,
     * except the header-only ones. */
    for (size_t i = 0; i < bpp->n88; i++)
        cr_assert_leq(bpp->seq88[i].len, 1020);
    pl_wr_free(&pt);
    pl_bsp_wipe(&s);
    free(bpp);
}

static void roundtrip(enum pl_curve c, const char *name, bool rsk)
{
    size_t len;
    uint8_t *upp = load_upp(name, &len);
    struct bound b = {0};
    bind_one(&b, c, upp, len, rsk);
    open_as_euicc(&b, upp, len, rsk);
    bound_free(&b);
    free(upp);
}

Test(bpp_bind, p256_no_rsk)
{
    roundtrip(PL_CURVE_P256, "TS48v1_A.der", false);
}
Test(bpp_bind, p256_rsk)
{
    roundtrip(PL_CURVE_P256, "TS48v5_SAIP2.3_BERTLV_SUCI.der", true);
}
Test(bpp_bind, bp256_no_rsk)
{
    roundtrip(PL_CURVE_BP256R1, "TS48v3_SAIP2.1_NoBERTLV.der", false);
}
Test(bpp_bind, bp256_rsk)
{
    roundtrip(PL_CURVE_BP256R1, "TS48V2-SAIP2-3-BERTLV-UNIQUE.der", true);
}

/* A UPP whose size is an exact multiple of 1007 and one a byte over: the boundary of the
 * '86' split (the pySim 1036-byte bug, IFPP.md §5.4). */
static uint8_t *synthetic_upp(size_t total)
{
    /* ProfileHeader then one PE-Dummy-like element padded with an OCTET STRING. */
    static const uint8_t hdr[] = {0xA0, 0x12, 0x80, 0x01, 0x02, 0x81, 0x01, 0x03, 0x83, 0x0A,
                                  0x98, 0x10, 0x32, 0x54, 0x76, 0x98, 0x10, 0x32, 0x54, 0xF6};
    uint8_t *b = calloc(1, total);
    cr_assert_not_null(b);
    memcpy(b, hdr, sizeof(hdr));
    size_t off = sizeof(hdr);
    size_t rest = total - off; /* one TLV: 04 82 LL LL <rest-4> */
    cr_assert_gt(rest, 260);
    b[off] = 0x04;
    b[off + 1] = 0x82;
    b[off + 2] = (uint8_t)((rest - 4) >> 8);
    b[off + 3] = (uint8_t)(rest - 4);
    for (size_t i = off + 4; i < total; i++)
        b[i] = (uint8_t)(i * 7u);
    return b;
}

Test(bpp_bind, segment_boundaries)
{
    const size_t sizes[] = {1007 * 4, 1007 * 4 + 1, 1007 * 4 - 1};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t *upp = synthetic_upp(sizes[i]);
        struct bound b = {0};
        bind_one(&b, PL_CURVE_P256, upp, sizes[i], i == 1);
        open_as_euicc(&b, upp, sizes[i], i == 1);
        struct pl_bpp *bpp = calloc(1, sizeof(*bpp));
        cr_assert_eq(pl_bpp_decode(b.bpp.buf, b.bpp.len, bpp), PL_OK);
        cr_assert_eq(bpp->n86, (sizes[i] + 1006) / 1007);
        free(bpp);
        bound_free(&b);
        free(upp);
    }
}

Test(bpp_bind, fresh_ephemeral_each_binding)
{
    size_t len;
    uint8_t *upp = load_upp("TS48v2_SAIP2.1_BERTLV.der", &len);
    struct pl_rng rng = PL_RNG_SYSTEM;
    struct pl_eckey *dp = NULL, *otk = NULL;
    uint8_t otpk[PL_EC_PUB_LEN];
    cr_assert_eq(pl_eckey_generate(PL_CURVE_P256, &rng, &dp), PL_OK);
    cr_assert_eq(pl_eckey_generate(PL_CURVE_P256, &rng, &otk), PL_OK);
    cr_assert_eq(pl_eckey_public(otk, otpk), PL_OK);
    struct pl_bind_params p = {
        .curve = PL_CURVE_P256,
        .dp_key = dp,
        .euicc_otpk = otpk,
        .eid = EID,
        .host_id = HOST_ID,
        .host_id_len = 8,
        .tid = TID,
        .tid_len = 16,
        .upp = upp,
        .upp_len = len,
        .profile_class = -1,
        .rng = &rng,
    };
    struct pl_wr a, b;
    pl_wr_init_dyn(&a, PL_BIND_BPP_MAX);
    pl_wr_init_dyn(&b, PL_BIND_BPP_MAX);
    cr_assert_eq(pl_bpp_bind(&p, &a), PL_OK);
    cr_assert_eq(pl_bpp_bind(&p, &b), PL_OK);
    struct pl_bpp *x = calloc(1, sizeof(*x)), *y = calloc(1, sizeof(*y));
    cr_assert_eq(pl_bpp_decode(a.buf, a.len, x), PL_OK);
    cr_assert_eq(pl_bpp_decode(b.buf, b.len, y), PL_OK);
    cr_assert_neq(memcmp(x->iscr.smdp_otpk, y->iscr.smdp_otpk, PL_EC_PUB_LEN), 0,
                  "otPK.DP reused across bindings (no PFS)");
    cr_assert_eq(x->n86, y->n86);
    cr_assert_neq(memcmp(x->seq86[0].tlv, y->seq86[0].tlv, x->seq86[0].len), 0);
    cr_assert(a.len != b.len || memcmp(a.buf, b.buf, a.len) != 0);
    free(x);
    free(y);
    pl_wr_free(&a);
    pl_wr_free(&b);
    pl_eckey_free(dp);
    pl_eckey_free(otk);
    free(upp);
}

Test(bpp_bind, rejects_bad_params)
{
    size_t len;
    uint8_t *upp = load_upp("TS48v1_B.der", &len);
    struct pl_rng rng = PL_RNG_SYSTEM;
    struct pl_eckey *dp = NULL, *dpbp = NULL, *otk = NULL, *pub = NULL;
    uint8_t otpk[PL_EC_PUB_LEN], dppub[PL_EC_PUB_LEN];
    cr_assert_eq(pl_eckey_generate(PL_CURVE_P256, &rng, &dp), PL_OK);
    cr_assert_eq(pl_eckey_generate(PL_CURVE_BP256R1, &rng, &dpbp), PL_OK);
    cr_assert_eq(pl_eckey_generate(PL_CURVE_P256, &rng, &otk), PL_OK);
    cr_assert_eq(pl_eckey_public(otk, otpk), PL_OK);
    cr_assert_eq(pl_eckey_public(dp, dppub), PL_OK);
    cr_assert_eq(pl_eckey_from_public(PL_CURVE_P256, dppub, &pub), PL_OK);
    struct pl_bind_params good = {
        .curve = PL_CURVE_P256,
        .dp_key = dp,
        .euicc_otpk = otpk,
        .eid = EID,
        .host_id = HOST_ID,
        .host_id_len = 8,
        .tid = TID,
        .tid_len = 16,
        .upp = upp,
        .upp_len = len,
        .profile_class = -1,
        .rng = &rng,
    };
    struct pl_wr w;
    struct pl_bind_params p;

    p = good;
    p.tid_len = 0;
    pl_wr_init_dyn(&w, PL_BIND_BPP_MAX);
    cr_assert_eq(pl_bpp_bind(&p, &w), PL_ERR_INVAL);
    pl_wr_free(&w);
    p = good;
    p.tid_len = 17;
    pl_wr_init_dyn(&w, PL_BIND_BPP_MAX);
    cr_assert_eq(pl_bpp_bind(&p, &w), PL_ERR_INVAL);
    pl_wr_free(&w);
    p = good;
    p.host_id_len = 17;
    pl_wr_init_dyn(&w, PL_BIND_BPP_MAX);
    cr_assert_eq(pl_bpp_bind(&p, &w), PL_ERR_INVAL);
    pl_wr_free(&w);
    p = good;
    p.dp_key = dpbp; /* curve mismatch */
    pl_wr_init_dyn(&w, PL_BIND_BPP_MAX);
    cr_assert_eq(pl_bpp_bind(&p, &w), PL_ERR_INVAL);
    pl_wr_free(&w);
    p = good;
    p.dp_key = pub; /* no private part */
    pl_wr_init_dyn(&w, PL_BIND_BPP_MAX);
    cr_assert_eq(pl_bpp_bind(&p, &w), PL_ERR_INVAL);
    pl_wr_free(&w);
    /* otPK not on the curve */
    uint8_t bad[PL_EC_PUB_LEN];
    memcpy(bad, otpk, sizeof(bad));
    bad[40] ^= 0x01;
    p = good;
    p.euicc_otpk = bad;
    pl_wr_init_dyn(&w, PL_BIND_BPP_MAX);
    cr_assert_neq(pl_bpp_bind(&p, &w), PL_OK);
    cr_assert_neq(pl_wr_status(&w), PL_OK);
    pl_wr_free(&w);
    /* otPK of the other curve */
    uint8_t bpk[PL_EC_PUB_LEN];
    cr_assert_eq(pl_eckey_public(dpbp, bpk), PL_OK);
    p = good;
    p.euicc_otpk = bpk;
    pl_wr_init_dyn(&w, PL_BIND_BPP_MAX);
    cr_assert_neq(pl_bpp_bind(&p, &w), PL_OK);
    pl_wr_free(&w);
    /* UPP without a ProfileHeader first */
    p = good;
    p.upp = upp + 3 + upp[2];
    p.upp_len = len - 3 - upp[2];
    pl_wr_init_dyn(&w, PL_BIND_BPP_MAX);
    cr_assert_eq(pl_bpp_bind(&p, &w), PL_ERR_DER_TAG);
    pl_wr_free(&w);
    /* Truncated UPP */
    p = good;
    p.upp_len = len - 1;
    pl_wr_init_dyn(&w, PL_BIND_BPP_MAX);
    cr_assert_neq(pl_bpp_bind(&p, &w), PL_OK);
    pl_wr_free(&w);
    /* SPN over 32 characters is refused by the StoreMetadata encoder */
    p = good;
    p.spn = "0123456789012345678901234567890123456789";
    pl_wr_init_dyn(&w, PL_BIND_BPP_MAX);
    cr_assert_neq(pl_bpp_bind(&p, &w), PL_OK);
    pl_wr_free(&w);

    pl_eckey_free(dp);
    pl_eckey_free(dpbp);
    pl_eckey_free(otk);
    pl_eckey_free(pub);
    free(upp);
}

Test(upp, iccid_of_every_ts48_profile)
{
    char path[512];
    DIR *d = opendir(pl_test_src(path, sizeof(path), "tests/data/ts48"));
    cr_assert_not_null(d);
    struct dirent *e;
    int n = 0, nuniq = 0;
    uint8_t uniq[36][PL_ICCID_LEN];
    while ((e = readdir(d)) != NULL) {
        if (!strstr(e->d_name, ".der"))
            continue;
        size_t len;
        uint8_t *upp = load_upp(e->d_name, &len);
        uint8_t iccid[PL_ICCID_LEN];
        cr_assert_eq(pl_upp_iccid(upp, len, iccid), PL_OK, "%s", e->d_name);
        /* The ProfileHeader is the first TLV: its iccid [3] follows '83 0A'. */
        size_t i = 0;
        while (i + 12 <= len && !(upp[i] == 0x83 && upp[i + 1] == 0x0A))
            i++;
        cr_assert_lt(i, 200u);
        /* SGP.22 coding: the header's natural-order digits, nibbles swapped ... */
        uint8_t want[PL_ICCID_LEN];
        pl_iccid_swap(upp + i + 2, want);
        cr_assert_eq(memcmp(iccid, want, PL_ICCID_LEN), 0, "%s", e->d_name);
        /* ... which is what the profile's own EF.ICCID holds (MF PE, TS 102 221 §13.2) ... */
        bool in_ef = false;
        for (size_t k = i + 12; k + PL_ICCID_LEN <= len && !in_ef; k++)
            in_ef = memcmp(upp + k, iccid, PL_ICCID_LEN) == 0;
        cr_assert(in_ef, "%s: the ICCID is not the content of EF.ICCID", e->d_name);
        /* ... and reads as an ITU-T E.118 ICCID of the telecom industry (89...). */
        char text[PL_ICCID_TEXT_MAX];
        pl_iccid_text(iccid, text);
        cr_assert(strncmp(text, "89", 2) == 0 && strlen(text) >= 19, "%s: %s", e->d_name, text);
        for (size_t k = 0; text[k] != '\0'; k++)
            cr_assert(text[k] >= '0' && text[k] <= '9', "%s: %s", e->d_name, text);
        if (strstr(e->d_name, "UNIQUE")) {
            for (int k = 0; k < nuniq; k++)
                cr_assert_neq(memcmp(uniq[k], iccid, PL_ICCID_LEN), 0, "%s", e->d_name);
            memcpy(uniq[nuniq++], iccid, PL_ICCID_LEN);
        }
        free(upp);
        n++;
    }
    closedir(d);
    cr_assert_eq(n, 36);
    cr_assert_eq(nuniq, 18);
}

Test(upp, iccid_rejects_malformed)
{
    uint8_t iccid[PL_ICCID_LEN];
    /* header with iccid of 9 bytes */
    static const uint8_t short_iccid[] = {
        0xA0, 0x11, 0x80, 0x01, 0x02, 0x81, 0x01, 0x03, 0x83, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    cr_assert_eq(pl_upp_iccid(short_iccid, sizeof(short_iccid), iccid), PL_ERR_DER_VALUE);
    /* missing iccid */
    static const uint8_t no_iccid[] = {0xA0, 0x06, 0x80, 0x01, 0x02, 0x81, 0x01, 0x03};
    cr_assert_neq(pl_upp_iccid(no_iccid, sizeof(no_iccid), iccid), PL_OK);
    /* indefinite length */
    static const uint8_t indef[] = {0xA0, 0x80, 0x80, 0x01, 0x02, 0x00, 0x00};
    cr_assert_eq(pl_upp_iccid(indef, sizeof(indef), iccid), PL_ERR_DER_INDEFINITE);
    /* first element not the header */
    static const uint8_t not_hdr[] = {0xA1, 0x00};
    cr_assert_eq(pl_upp_iccid(not_hdr, sizeof(not_hdr), iccid), PL_ERR_DER_TAG);
    /* empty profileType */
    static const uint8_t empty_type[] = {0xA0, 0x14, 0x80, 0x01, 0x02, 0x81, 0x01, 0x03,
                                         0x82, 0x00, 0x83, 0x0A, 1,    2,    3,    4,
                                         5,    6,    7,    8,    9,    10};
    cr_assert_eq(pl_upp_iccid(empty_type, sizeof(empty_type), iccid), PL_ERR_DER_VALUE);
    /* good header, then a garbage trailing byte */
    static const uint8_t trailing[] = {0xA0, 0x12, 0x80, 0x01, 0x02, 0x81, 0x01,
                                       0x03, 0x83, 0x0A, 1,    2,    3,    4,
                                       5,    6,    7,    8,    9,    10,   0xA1};
    cr_assert_neq(pl_upp_iccid(trailing, sizeof(trailing), iccid), PL_OK);
    cr_assert_eq(pl_upp_iccid(trailing, sizeof(trailing) - 1, iccid), PL_OK);
    cr_assert_eq(iccid[0], 0x10); /* 01 .. 0A in the header, swapped: 10 .. A0 */
    cr_assert_eq(iccid[9], 0xA0);
    cr_assert_eq(pl_upp_iccid(NULL, 0, iccid), PL_ERR_INVAL);
}
