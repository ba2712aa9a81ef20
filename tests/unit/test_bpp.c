/* Unit tests: SGP.22 BoundProfilePackage codec (protocol/src/bpp.c): vectors, round trips,
 * smdpSign data and signature, ES10b segmentation in lpac order, inner commands. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "provline/protocol/bpp.h"
#include "provline/protocol/bsp.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/der.h"
#include "provline/protocol/hex.h"
#include "provline/protocol/wr.h"
#include "sgp22_vec.h"

/* IFPP.md §5.4 KAT keys. */
static const char OTPK_DP_HEX[] =
    "049d346aabe1466db5006749ae5251f75912a2336b5022540f29f1dbdc98ea32362c1296b7027bb59214d59"
    "7177b7cc90ecc72aebea2729b16180bba89c87c8757";
static const char OTPK_EUICC_HEX[] =
    "04209c317b637935dd3da1c54f63495dfb31f97d293df085710320595c9aacb83fdde4c69fc17a0c74c20cc6"
    "92662f049892ba37a4ba47d2c70cd8a99986391f9b";

static void unhex(const char *hex, uint8_t *out, size_t want)
{
    size_t n = 0;
    cr_assert_eq(pl_hex_decode(hex, out, want, &n), PL_OK);
    cr_assert_eq(n, want);
}

static struct pl_bpp *bpp_new(void)
{
    struct pl_bpp *b = calloc(1, sizeof(*b));
    cr_assert_not_null(b);
    return b;
}

/* Decodes with the decoder func names and, on success, re-encodes: strict DER means the
 * encoding must reproduce the input exactly. */
static int decode_and_reencode(const char *func, const uint8_t *der, size_t len, const char *name)
{
    struct pl_wr w;
    int rc;
    pl_wr_init_dyn(&w, 1u << 20);
    if (strcmp(func, "bpp") == 0) {
        struct pl_bpp *b = bpp_new();
        rc = pl_bpp_decode(der, len, b);
        if (rc == PL_OK)
            cr_assert_eq(pl_bpp_encode(b, &w), PL_OK, "%s", name);
        free(b);
    } else if (strcmp(func, "iscr") == 0) {
        struct pl_iscr i;
        rc = pl_iscr_decode(der, len, &i);
        if (rc == PL_OK)
            cr_assert_eq(pl_iscr_encode(&i, &w), PL_OK, "%s", name);
    } else if (strcmp(func, "cfg") == 0) {
        struct pl_configure_isdp c;
        rc = pl_configure_isdp_decode(der, len, &c);
        if (rc == PL_OK)
            cr_assert_eq(pl_configure_isdp_encode(&c, &w), PL_OK, "%s", name);
    } else if (strcmp(func, "smr") == 0) {
        struct pl_smr s;
        rc = pl_smr_decode(der, len, &s);
        if (rc == PL_OK)
            cr_assert_eq(pl_smr_encode(&s, &w), PL_OK, "%s", name);
    } else if (strcmp(func, "rsk") == 0) {
        struct pl_rsk k;
        rc = pl_rsk_decode(der, len, &k);
        if (rc == PL_OK)
            cr_assert_eq(pl_rsk_encode(&k, &w), PL_OK, "%s", name);
    } else {
        cr_assert_fail("unknown func '%s'", func);
        return 1;
    }
    if (rc == PL_OK) {
        cr_assert_eq(w.len, len, "%s: re-encoding has %zu bytes, input %zu", name, w.len, len);
        cr_assert_eq(memcmp(w.buf, der, len), 0, "%s: re-encoding differs", name);
    }
    pl_wr_free(&w);
    return rc;
}

static void run_file(const char *file)
{
    struct pl_vec_file *vf = pl_vec_load(file);
    size_t ok = 0, bad = 0;
    for (size_t i = 0; i < vf->nrec; i++) {
        const struct pl_vec_rec *r = &vf->rec[i];
        const char *name = pl_vec_get(r, "name");
        int want = sgp22_err(pl_vec_get(r, "expect"));
        size_t len;
        uint8_t *der = sgp22_der(r, &len);
        int got = decode_and_reencode(pl_vec_get(r, "func"), der, len, name);
        cr_expect_eq(got, want, "%s (line %u): got %d (%s), want %d (%s)", name, r->line, got,
                     pl_strerror(got), want, pl_strerror(want));
        if (want == PL_OK)
            ok++;
        else
            bad++;
        free(der);
    }
    cr_assert_gt(ok, 0);
    cr_assert_gt(bad, 10);
    pl_vec_free(vf);
}

Test(bpp, vectors_bpp_iscr)
{
    run_file("sgp22_bpp.txt");
}

Test(bpp, vectors_inner_commands)
{
    run_file("sgp22_inner.txt");
}

Test(bpp, decode_full_fields)
{
    size_t len;
    uint8_t *der = sgp22_load("sgp22_bpp.txt", "bpp_full", &len);
    struct pl_bpp *b = bpp_new();
    uint8_t otpk[PL_EC_PUB_LEN];
    unhex(OTPK_DP_HEX, otpk, sizeof(otpk));

    cr_assert_eq(pl_bpp_decode(der, len, b), PL_OK);
    cr_assert_eq(b->iscr.tid_len, 16);
    for (uint8_t i = 0; i < 16; i++)
        cr_assert_eq(b->iscr.tid[i], i + 1);
    cr_assert_eq(b->iscr.host_id_len, 8);
    cr_assert_eq(memcmp(b->iscr.host_id, "HOSTID01", 8), 0);
    cr_assert_eq(memcmp(b->iscr.smdp_otpk, otpk, sizeof(otpk)), 0);
    for (size_t i = 0; i < PL_ECDSA_SIG_LEN; i++)
        cr_assert_eq(b->iscr.smdp_sign[i], 0x5A);
    cr_assert_eq(b->iscr.raw, der + 5); /* after BF36 82 06 1D */
    cr_assert_eq(b->iscr.raw_len, 178);
    cr_assert_eq(b->n87_first, 1);
    cr_assert_eq(b->n88, 2);
    cr_assert(b->has_second87);
    cr_assert_eq(b->n87_second, 1);
    cr_assert_eq(b->n86, 3);
    /* Segments are whole TLVs with their tags. */
    cr_assert_eq(b->first87[0].tlv[0], 0x87);
    cr_assert_eq(b->first87[0].len, 26);
    cr_assert_eq(b->seq88[0].len, 42);
    cr_assert_eq(b->seq88[1].len, 18);
    cr_assert_eq(b->seq88[1].tlv[2], 0xB2);
    cr_assert_eq(b->second87[0].len, 58);
    cr_assert_eq(b->seq86[0].len, 203);
    cr_assert_eq(b->seq86[1].len, 10);
    cr_assert_eq(b->seq86[2].len, PL_BSP_MAX_SEGMENT);
    cr_assert_eq(b->raw, der);
    cr_assert_eq(b->raw_len, len);
    free(b);
    free(der);
}

/* IFPP.md §5.7 (lpac es10b.c): the order and boundaries of the LoadBoundProfilePackage
 * commands. Expected lengths come from the vector's own DER headers. */
Test(bpp, segments_lpac_order_with_a2)
{
    size_t len, n = 0;
    uint8_t *der = sgp22_load("sgp22_bpp.txt", "bpp_full", &len);
    struct pl_bpp *b = bpp_new();
    struct pl_bpp_span sp[PL_BPP_MAX_SEGMENTS];
    /* BF36 82 061D | BF23 81 AE .. | A0 1A (87 18 ..) | A1 3C | 88 28 .. | 88 10 .. |
     * A2 3A (87 38 ..) | A3 82 04D1 | 86 81 C8 .. | 86 08 .. | 86 82 03F8 .. */
    static const struct {
        size_t len;
        uint8_t b0, b1;
    } want[] = {
        {5 + 178, 0xBF, 0x36}, {28, 0xA0, 0x1A}, {2, 0xA1, 0x3C}, {42, 0x88, 0x28},
        {18, 0x88, 0x10},      {60, 0xA2, 0x3A}, {4, 0xA3, 0x82}, {203, 0x86, 0x81},
        {10, 0x86, 0x08},      {1020, 0x86, 0x82},
    };

    cr_assert_eq(pl_bpp_decode(der, len, b), PL_OK);
    cr_assert_eq(pl_bpp_segment_count(b), 10);
    cr_assert_eq(pl_bpp_segments(b, sp, PL_BPP_MAX_SEGMENTS, &n), PL_OK);
    cr_assert_eq(n, 10);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(sp[i].off, off, "span %zu", i);
        cr_assert_eq(sp[i].len, want[i].len, "span %zu: len %zu", i, sp[i].len);
        cr_assert_eq(sp[i].p, der + off);
        cr_assert_eq(sp[i].p[0], want[i].b0, "span %zu", i);
        cr_assert_eq(sp[i].p[1], want[i].b1, "span %zu", i);
        off += sp[i].len;
    }
    cr_assert_eq(off, len);
    /* (1) ends exactly where BF23 ends; (2)(5) are whole lists; (4)(7) the segments. */
    cr_assert_eq(sp[0].p + sp[0].len, b->iscr.raw + b->iscr.raw_len);
    cr_assert_eq(sp[3].p, b->seq88[0].tlv);
    cr_assert_eq(sp[4].p, b->seq88[1].tlv);
    cr_assert_eq(sp[5].p + 2, b->second87[0].tlv);
    cr_assert_eq(sp[7].p, b->seq86[0].tlv);
    cr_assert_eq(sp[9].p, b->seq86[2].tlv);
    free(b);
    free(der);
}

Test(bpp, segments_without_a2)
{
    size_t len, n = 0;
    uint8_t *der = sgp22_load("sgp22_bpp.txt", "bpp_no_a2", &len);
    struct pl_bpp *b = bpp_new();
    struct pl_bpp_span sp[16];
    static const uint8_t first[] = {0xBF, 0xA0, 0xA1, 0x88, 0x88, 0xA3, 0x86, 0x86, 0x86};

    cr_assert_eq(pl_bpp_decode(der, len, b), PL_OK);
    cr_assert_not(b->has_second87);
    cr_assert_eq(pl_bpp_segments(b, sp, 16, &n), PL_OK);
    cr_assert_eq(n, sizeof(first));
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(sp[i].p[0], first[i], "span %zu", i);
        total += sp[i].len;
    }
    cr_assert_eq(total, len);
    cr_assert_eq(sp[2].len, 2);
    cr_assert_eq(sp[5].len, 4);

    /* Too small an output array; a struct that did not come from the decoder. */
    cr_assert_eq(pl_bpp_segments(b, sp, n - 1, &n), PL_ERR_OVERFLOW);
    cr_assert_eq(n, 0);
    struct pl_bpp *fresh = bpp_new();
    cr_assert_eq(pl_bpp_segments(fresh, sp, 16, &n), PL_ERR_INVAL);
    /* A decoded struct whose sizes were tampered with no longer covers raw exactly. */
    b->a0_len += 1;
    cr_assert_eq(pl_bpp_segments(b, sp, 16, &n), PL_ERR_INVAL);
    b->a0_len -= 2;
    cr_assert_eq(pl_bpp_segments(b, sp, 16, &n), PL_ERR_INVAL);
    free(fresh);
    free(b);
    free(der);
}

/* Builds a BPP from parts, encodes it, and decodes it back. */
Test(bpp, encode_from_struct_round_trip)
{
    uint8_t tid[3] = {0xAA, 0xBB, 0xCC}, host[1] = {0x01}, otpk[PL_EC_PUB_LEN], sig[64];
    uint8_t s87[12] = {0x87, 10}, s88[10] = {0x88, 8}, s86a[10] = {0x86, 8}, s86b[1020];
    struct pl_bpp *in = bpp_new(), *out = bpp_new();
    struct pl_wr w;

    unhex(OTPK_DP_HEX, otpk, sizeof(otpk));
    memset(sig, 0x11, sizeof(sig));
    memset(s86a + 2, 0xEE, 8);
    s86b[0] = 0x86;
    s86b[1] = 0x82;
    s86b[2] = 0x03;
    s86b[3] = 0xF8;
    memset(s86b + 4, 0x77, sizeof(s86b) - 4);
    in->iscr = (struct pl_iscr){.tid = tid, .tid_len = sizeof(tid), .host_id = host,
                                .host_id_len = 1, .smdp_otpk = otpk, .smdp_sign = sig};
    in->n87_first = 1;
    in->first87[0] = (struct pl_bpp_seg){s87, sizeof(s87)};
    in->n88 = 1;
    in->seq88[0] = (struct pl_bpp_seg){s88, sizeof(s88)};
    in->n86 = 3;
    in->seq86[0] = (struct pl_bpp_seg){s86b, sizeof(s86b)};
    in->seq86[1] = (struct pl_bpp_seg){s86a, sizeof(s86a) - 1}; /* TLV cut short: fails below */
    in->seq86[2] = (struct pl_bpp_seg){s86a, sizeof(s86a)};

    pl_wr_init_dyn(&w, 1u << 16);
    cr_assert_eq(pl_bpp_encode(in, &w), PL_ERR_DER_LENGTH);
    cr_assert_eq(pl_wr_status(&w), PL_ERR_DER_LENGTH, "the writer is marked failed");
    pl_wr_reset(&w);
    in->seq86[1] = in->seq86[2];
    int rc = pl_bpp_encode(in, &w);
    cr_assert_eq(rc, PL_OK, "%d %s", rc, pl_strerror(rc));
    cr_assert_eq(pl_bpp_decode(w.buf, w.len, out), PL_OK);
    cr_assert_eq(out->iscr.tid_len, 3);
    cr_assert_eq(memcmp(out->iscr.tid, tid, 3), 0);
    cr_assert_eq(out->n86, 3);
    cr_assert_eq(out->seq86[0].len, sizeof(s86b));
    cr_assert_eq(memcmp(out->seq86[0].tlv, s86b, sizeof(s86b)), 0);
    cr_assert_eq(memcmp(out->seq86[2].tlv, s86a, sizeof(s86a)), 0);
    cr_assert_eq(memcmp(out->seq88[0].tlv, s88, sizeof(s88)), 0);

    /* With 'A2': between 'A1' and 'A3'. */
    pl_wr_reset(&w);
    in->has_second87 = true;
    in->n87_second = 1;
    in->second87[0] = (struct pl_bpp_seg){s87, sizeof(s87)};
    cr_assert_eq(pl_bpp_encode(in, &w), PL_OK);
    cr_assert_eq(pl_bpp_decode(w.buf, w.len, out), PL_OK);
    cr_assert(out->has_second87);
    cr_assert_eq(out->n87_second, 1);
    pl_wr_free(&w);
    free(in);
    free(out);
}

Test(bpp, encode_rejects_bad_structs)
{
    uint8_t tid[1] = {1}, host[1] = {1}, otpk[PL_EC_PUB_LEN], sig[64] = {0};
    uint8_t s87[10] = {0x87, 8}, s88[10] = {0x88, 8}, s86[10] = {0x86, 8}, big[1021];
    struct pl_bpp *in = bpp_new();
    struct pl_wr w;

    unhex(OTPK_DP_HEX, otpk, sizeof(otpk));
    big[0] = 0x86;
    big[1] = 0x82;
    big[2] = 0x03;
    big[3] = 0xF9;
    memset(big + 4, 0, sizeof(big) - 4);
    in->iscr = (struct pl_iscr){.tid = tid, .tid_len = 1, .host_id = host, .host_id_len = 1,
                                .smdp_otpk = otpk, .smdp_sign = sig};
    in->n87_first = 1;
    in->first87[0] = (struct pl_bpp_seg){s87, sizeof(s87)};
    in->n88 = 1;
    in->seq88[0] = (struct pl_bpp_seg){s88, sizeof(s88)};
    in->n86 = 1;
    in->seq86[0] = (struct pl_bpp_seg){s86, sizeof(s86)};

#define EXPECT_ENC(want)                                                                   \
    do {                                                                                   \
        pl_wr_init_dyn(&w, 1u << 16);                                                      \
        cr_expect_eq(pl_bpp_encode(in, &w), (want), "line %d", __LINE__);                  \
        pl_wr_free(&w);                                                                    \
    } while (0)

    EXPECT_ENC(PL_OK);
    in->n86 = 0;
    EXPECT_ENC(PL_ERR_INVAL); /* empty 'A3' */
    in->n86 = PL_BPP_MAX_86 + 1;
    EXPECT_ENC(PL_ERR_INVAL);
    in->n86 = 1;
    in->seq86[0] = (struct pl_bpp_seg){s88, sizeof(s88)};
    EXPECT_ENC(PL_ERR_DER_TAG); /* an '88' in the '86' list */
    in->seq86[0] = (struct pl_bpp_seg){big, sizeof(big)};
    EXPECT_ENC(PL_ERR_OVERFLOW); /* 1021-byte segment */
    in->seq86[0] = (struct pl_bpp_seg){NULL, 10};
    EXPECT_ENC(PL_ERR_INVAL);
    in->seq86[0] = (struct pl_bpp_seg){s86, sizeof(s86)};
    in->iscr.tid_len = 17;
    EXPECT_ENC(PL_ERR_INVAL);
    in->iscr.tid_len = 1;
    in->iscr.host_id_len = 0;
    EXPECT_ENC(PL_ERR_INVAL);
    in->iscr.host_id_len = 1;
    in->iscr.smdp_sign = NULL;
    EXPECT_ENC(PL_ERR_INVAL);
    in->iscr.smdp_sign = sig;
    otpk[0] = 0x02;
    EXPECT_ENC(PL_ERR_INVAL);
    otpk[0] = 0x04;
    EXPECT_ENC(PL_OK);
#undef EXPECT_ENC

    /* A fixed writer that is too small; a writer already failed. */
    uint8_t small[64];
    pl_wr_init_fixed(&w, small, sizeof(small));
    cr_assert_eq(pl_bpp_encode(in, &w), PL_ERR_OVERFLOW);
    cr_assert_eq(pl_bpp_encode(in, &w), PL_ERR_OVERFLOW);
    free(in);
}

/* IFPP.md §5.2: 82 01 01 || 80 L tid || A6 L (80 01 88 | 81 01 10 | 84 L hostId) ||
 * 5F49 41 otPK.DP || 5F49 41 otPK.EUICC */
Test(bpp, iscr_signed_data_layout)
{
    size_t len;
    uint8_t *der = sgp22_load("sgp22_bpp.txt", "iscr", &len);
    uint8_t dp[PL_EC_PUB_LEN], eu[PL_EC_PUB_LEN], want[256];
    struct pl_iscr i;
    struct pl_wr w, w2;
    size_t n = 0;

    unhex(OTPK_DP_HEX, dp, sizeof(dp));
    unhex(OTPK_EUICC_HEX, eu, sizeof(eu));
    memcpy(want + n, "\x82\x01\x01\x80\x10", 5);
    n += 5;
    for (uint8_t k = 1; k <= 16; k++)
        want[n++] = k;
    memcpy(want + n, "\xA6\x10\x80\x01\x88\x81\x01\x10\x84\x08HOSTID01", 18);
    n += 18;
    memcpy(want + n, "\x5F\x49\x41", 3);
    n += 3;
    memcpy(want + n, dp, sizeof(dp));
    n += sizeof(dp);
    memcpy(want + n, "\x5F\x49\x41", 3);
    n += 3;
    memcpy(want + n, eu, sizeof(eu));
    n += sizeof(eu);

    cr_assert_eq(pl_iscr_decode(der, len, &i), PL_OK);
    cr_assert_not_null(i.signed_raw);
    cr_assert_eq(i.signed_raw, der + 4, "the received bytes after BF23 81 AE");
    pl_wr_init_dyn(&w, 1024);
    cr_assert_eq(pl_bpp_iscr_signed_data(&i, eu, &w), PL_OK);
    cr_assert_eq(w.len, n);
    cr_assert_eq(memcmp(w.buf, want, n), 0);

    /* Built from the fields (no received bytes): the same data. */
    struct pl_iscr f = {.tid = i.tid, .tid_len = i.tid_len, .host_id = i.host_id,
                        .host_id_len = i.host_id_len, .smdp_otpk = i.smdp_otpk};
    pl_wr_init_dyn(&w2, 1024);
    cr_assert_eq(pl_bpp_iscr_signed_data(&f, eu, &w2), PL_OK);
    cr_assert_eq(w2.len, n);
    cr_assert_eq(memcmp(w2.buf, want, n), 0);

    /* The eUICC key must be an uncompressed point. */
    pl_wr_reset(&w2);
    eu[0] = 0x03;
    cr_assert_eq(pl_bpp_iscr_signed_data(&f, eu, &w2), PL_ERR_INVAL);
    pl_wr_free(&w);
    pl_wr_free(&w2);
    free(der);
}

static void sign_verify_on(enum pl_curve curve)
{
    struct pl_rng rng = PL_RNG_SYSTEM;
    struct pl_eckey *dp = NULL, *other = NULL, *otk = NULL, *otk2 = NULL;
    uint8_t eu[PL_EC_PUB_LEN], eu2[PL_EC_PUB_LEN], dpk[PL_EC_PUB_LEN], sig[64];
    uint8_t tid[16], host[8] = "HOSTID01";
    struct pl_wr w;
    struct pl_iscr in, got;

    cr_assert_eq(pl_eckey_generate(curve, &rng, &dp), PL_OK);
    cr_assert_eq(pl_eckey_generate(curve, &rng, &other), PL_OK);
    cr_assert_eq(pl_eckey_generate(curve, &rng, &otk), PL_OK);
    cr_assert_eq(pl_eckey_generate(curve, &rng, &otk2), PL_OK);
    cr_assert_eq(pl_eckey_public(otk, eu), PL_OK);
    cr_assert_eq(pl_eckey_public(otk2, eu2), PL_OK);
    cr_assert_eq(pl_eckey_public(dp, dpk), PL_OK); /* any point serves as otPK.DP here */
    memset(tid, 0x3C, sizeof(tid));
    in = (struct pl_iscr){.tid = tid, .tid_len = sizeof(tid), .host_id = host, .host_id_len = 8,
                          .smdp_otpk = dpk};
    cr_assert_eq(pl_iscr_sign(&in, eu, dp, &rng, sig), PL_OK);
    in.smdp_sign = sig;
    cr_assert_eq(pl_iscr_verify(&in, eu, dp), PL_OK);

    pl_wr_init_dyn(&w, 1024);
    cr_assert_eq(pl_iscr_encode(&in, &w), PL_OK);
    cr_assert_eq(pl_iscr_decode(w.buf, w.len, &got), PL_OK);
    cr_assert_eq(pl_iscr_verify(&got, eu, dp), PL_OK);
    /* Anti-misbinding (IFPP.md §5.2): another eUICC one-time key fails. */
    cr_assert_eq(pl_iscr_verify(&got, eu2, dp), PL_ERR_BAD_SIGNATURE);
    /* Another SM-DP key fails. */
    cr_assert_eq(pl_iscr_verify(&got, eu, other), PL_ERR_BAD_SIGNATURE);
    /* A flipped bit in the received transactionId fails. */
    w.buf[9] ^= 0x01;
    cr_assert_eq(pl_iscr_decode(w.buf, w.len, &got), PL_OK);
    cr_assert_eq(pl_iscr_verify(&got, eu, dp), PL_ERR_BAD_SIGNATURE);
    w.buf[9] ^= 0x01;
    /* A flipped bit in smdpSign fails. */
    w.buf[w.len - 1] ^= 0x80;
    cr_assert_eq(pl_iscr_decode(w.buf, w.len, &got), PL_OK);
    cr_assert_eq(pl_iscr_verify(&got, eu, dp), PL_ERR_BAD_SIGNATURE);
    in.smdp_sign = NULL;
    cr_assert_eq(pl_iscr_verify(&in, eu, dp), PL_ERR_INVAL);

    pl_wr_free(&w);
    pl_eckey_free(dp);
    pl_eckey_free(other);
    pl_eckey_free(otk);
    pl_eckey_free(otk2);
}

Test(bpp, iscr_sign_verify_p256)
{
    sign_verify_on(PL_CURVE_P256);
}

Test(bpp, iscr_sign_verify_brainpool)
{
    sign_verify_on(PL_CURVE_BP256R1);
}

Test(bpp, inner_fields)
{
    size_t len;
    uint8_t *der = sgp22_load("sgp22_inner.txt", "smr_full", &len);
    static const uint8_t iccid[10] = {0x98, 0x10, 0x99, 0x09, 0x00, 0x21, 0x43, 0x65, 0x87, 0x39};
    struct pl_smr s;

    cr_assert_eq(pl_smr_decode(der, len, &s), PL_OK);
    cr_assert_eq(memcmp(s.iccid, iccid, 10), 0);
    cr_assert_str_eq(s.spn, "Op\xC3\xA9");
    cr_assert_str_eq(s.name, "Name");
    cr_assert_eq(s.opt[PL_SMR_ICON_TYPE].len, 3);
    cr_assert_eq(s.opt[PL_SMR_ICON].len, 6);
    cr_assert_eq(s.opt[PL_SMR_PROFILE_CLASS].len, 3);
    cr_assert_eq(s.opt[PL_SMR_NOTIF_CONFIG].tlv[0], 0xB6);
    cr_assert_eq(s.opt[PL_SMR_PROFILE_OWNER].tlv[0], 0xB7);
    cr_assert_eq(s.opt[PL_SMR_PPR].tlv[0], 0x99);
    cr_assert_null(s.opt[PL_SMR_SSD_STORED].tlv);
    cr_assert_null(s.opt[PL_SMR_SSD_NOT_STORED].tlv);
    cr_assert_eq(pl_smr_opt_tag(PL_SMR_SSD_NOT_STORED), 0xBF23u);
    cr_assert_eq(pl_smr_opt_tag(PL_SMR_OPT_COUNT), 0);
    free(der);

    struct pl_configure_isdp c;
    der = sgp22_load("sgp22_inner.txt", "cfg_isdp_oid", &len);
    cr_assert_eq(pl_configure_isdp_decode(der, len, &c), PL_OK);
    cr_assert(c.has_dp);
    cr_assert_eq(c.dp_oid_len, 8);
    cr_assert_eq(memcmp(c.dp_oid, "\x2b\x06\x01\x04\x01\x81\xf8\x02", 8), 0);
    cr_assert_eq(c.dp_extra_len, 0);
    free(der);
    der = sgp22_load("sgp22_inner.txt", "cfg_isdp_empty", &len);
    cr_assert_eq(pl_configure_isdp_decode(der, len, &c), PL_OK);
    cr_assert_not(c.has_dp);
    free(der);

    struct pl_rsk k;
    der = sgp22_load("sgp22_inner.txt", "rsk", &len);
    cr_assert_eq(pl_rsk_decode(der, len, &k), PL_OK);
    for (size_t i = 0; i < PL_RSK_LEN; i++) {
        cr_assert_eq(k.mcv[i], 1);
        cr_assert_eq(k.ppk_enc[i], 2);
        cr_assert_eq(k.ppk_mac[i], 3);
    }
    free(der);
}

Test(bpp, inner_encode_rejects)
{
    struct pl_smr s;
    struct pl_configure_isdp c;
    struct pl_wr w;
    uint8_t icon[] = {0x94, 0x01, 0x00}, wrong[] = {0x95, 0x01, 0x00};
    uint8_t oid[] = {0x2B, 0x06}, bad_oid[] = {0x2B, 0x86}, extra[120];

    memset(&s, 0, sizeof(s));
    pl_wr_init_dyn(&w, 4096);
    cr_assert_eq(pl_smr_encode(&s, &w), PL_OK, "empty strings are allowed");
    pl_wr_reset(&w);
    memset(s.spn, 'x', 33);
    cr_assert_eq(pl_smr_encode(&s, &w), PL_ERR_INVAL, "33 characters");
    pl_wr_reset(&w);
    memset(s.spn, 0, sizeof(s.spn));
    memcpy(s.spn, "\xC3\x28", 2);
    cr_assert_eq(pl_smr_encode(&s, &w), PL_ERR_INVAL, "invalid UTF-8");
    pl_wr_reset(&w);
    memset(s.spn, 0, sizeof(s.spn));
    s.opt[PL_SMR_ICON] = (struct pl_bpp_seg){icon, sizeof(icon)};
    cr_assert_eq(pl_smr_encode(&s, &w), PL_ERR_INVAL, "icon without iconType");
    pl_wr_reset(&w);
    s.opt[PL_SMR_ICON] = (struct pl_bpp_seg){NULL, 0};
    s.opt[PL_SMR_ICON_TYPE] = (struct pl_bpp_seg){wrong, sizeof(wrong)};
    cr_assert_eq(pl_smr_encode(&s, &w), PL_ERR_DER_TAG, "a '95' given as iconType");
    pl_wr_free(&w);

    memset(&c, 0, sizeof(c));
    pl_wr_init_dyn(&w, 4096);
    c.has_dp = true;
    cr_assert_eq(pl_configure_isdp_encode(&c, &w), PL_ERR_INVAL, "no OID");
    pl_wr_reset(&w);
    c.dp_oid = bad_oid;
    c.dp_oid_len = sizeof(bad_oid);
    cr_assert_eq(pl_configure_isdp_encode(&c, &w), PL_ERR_DER_VALUE, "unfinished OID arc");
    pl_wr_reset(&w);
    c.dp_oid = oid;
    c.dp_oid_len = sizeof(oid);
    cr_assert_eq(pl_configure_isdp_encode(&c, &w), PL_OK);
    cr_assert_eq(w.len, 9);
    cr_assert_eq(memcmp(w.buf, "\xBF\x24\x06\xB8\x04\x80\x02\x2B\x06", 9), 0);
    pl_wr_reset(&w);
    memset(extra, 0, sizeof(extra));
    extra[0] = 0x81;
    extra[1] = 118; /* B8 = 2 + 4 + 120 = 126 bytes: fits */
    c.dp_extra = extra;
    c.dp_extra_len = sizeof(extra);
    cr_assert_eq(pl_configure_isdp_encode(&c, &w), PL_OK);
    pl_wr_reset(&w);
    extra[1] = 117; /* the run of TLVs no longer fills dp_extra */
    cr_assert_eq(pl_configure_isdp_encode(&c, &w), PL_ERR_DER_TAG);
    pl_wr_free(&w);
    uint8_t extra3[123] = {0x81, 121};
    c.dp_extra = extra3;
    c.dp_extra_len = sizeof(extra3);
    pl_wr_init_dyn(&w, 4096);
    cr_assert_eq(pl_configure_isdp_encode(&c, &w), PL_ERR_INVAL, "'B8' of 129 bytes");
    pl_wr_free(&w);
}
