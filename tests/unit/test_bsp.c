/* Unit tests: BSP session keys and segment protection (bsp.h), GSMA SGP.22 v2.5 §2.6.4
 * and Annex G as in reference/IFPP.md §5.3-5.4. The known-answer test of IFPP.md §5.4
 * (tests/vectors/bsp_kat_ifpp.txt) is an acceptance criterion. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "provline/protocol/bsp.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/sym.h"
#include "provline/protocol/wr.h"
#include "vecfile.h"

/* ---------------------------------------------------------------- helpers */

static void random_keys(struct pl_bsp_keys *k)
{
    cr_assert_eq(pl_rng_system_fill(NULL, (uint8_t *)k, sizeof(*k)), PL_OK);
}

/* A sender and a receiver that share keys. */
static void pair(struct pl_bsp *tx, struct pl_bsp *rx)
{
    struct pl_bsp_keys k;

    random_keys(&k);
    pl_bsp_init(tx, &k);
    pl_bsp_init(rx, &k);
    pl_bsp_keys_wipe(&k);
}

/* Wraps one segment into buf; returns its length. */
static size_t wrap1(struct pl_bsp *b, uint8_t tag, bool enc, const uint8_t *pt, size_t len,
                    uint8_t *buf, size_t cap)
{
    struct pl_wr w;

    pl_wr_init_fixed(&w, buf, cap);
    cr_assert_eq(pl_bsp_wrap(b, tag, enc, pt, len, &w), PL_OK, "wrap %zu bytes", len);
    return w.len;
}

/* Unwraps into out; returns the pl_err and the plaintext length in *n. */
static int unwrap1(struct pl_bsp *b, uint8_t tag, bool enc, const uint8_t *tlv, size_t len,
                   uint8_t *out, size_t cap, size_t *n)
{
    struct pl_wr w;
    int rc;

    pl_wr_init_fixed(&w, out, cap);
    rc = pl_bsp_unwrap(b, tag, enc, tlv, len, &w);
    *n = w.len;
    return rc;
}

/* Header size of a segment's DER length form. */
static size_t hdr_size(const uint8_t *seg)
{
    return seg[1] < 0x80 ? 2u : seg[1] == 0x81 ? 3u : 4u;
}

/* Checks a wrapped segment against the formulas of IFPP.md §5.4 computed here from the
 * primitives, independently of bsp.c: C-MAC over MCV || tag || len || data as sent, and
 * ICV = AES(S-ENC, counter). Returns the plaintext length recovered into pt_out. */
static size_t check_formulas(const struct pl_bsp *before, const uint8_t *seg, size_t len,
                             bool enc, uint8_t *pt_out)
{
    size_t h = hdr_size(seg), body = len - h - 8, plain = body;
    uint8_t mac[16], ctr[16] = {0}, icv[16];
    struct pl_iov iov[2] = {{before->k.mcv, 16}, {seg, h + body}};

    cr_assert_eq(pl_aes_cmac(before->k.s_mac, iov, 2, mac), PL_OK);
    cr_expect_arr_eq(seg + h + body, mac, 8, "C-MAC is the first 8 bytes");
    if (!enc) {
        memcpy(pt_out, seg + h, body);
        return body;
    }
    ctr[12] = (uint8_t)(before->counter >> 24);
    ctr[13] = (uint8_t)(before->counter >> 16);
    ctr[14] = (uint8_t)(before->counter >> 8);
    ctr[15] = (uint8_t)before->counter;
    cr_assert_eq(pl_aes128_ecb_block(before->k.s_enc, ctr, icv), PL_OK);
    cr_assert_eq(pl_aes128_cbc_decrypt(before->k.s_enc, icv, seg + h, body, pt_out), PL_OK);
    while (plain > 0 && pt_out[plain - 1] == 0)
        plain--;
    cr_assert_gt(plain, 0);
    cr_expect_eq(pt_out[plain - 1], 0x80, "padding starts with 80");
    cr_expect_leq(body - plain, 15);
    return plain - 1;
}

/* ---------------------------------------------------------------- KAT */

Test(bsp, ifpp_kat)
{
    struct pl_vec_file *vf = pl_vec_load("bsp_kat_ifpp.txt");
    const struct pl_vec_rec *r;
    uint8_t sk_dp[32], sk_eu[32], host[16], eid[16], pk_dp[65], pk_eu[65], z[32], info[64];
    uint8_t mcv0[16], senc[16], smac[16], plain[8], seg[64], mcv1[16], got[128], km[48];
    size_t host_len, info_len, plain_len, seg_len, n;
    struct pl_eckey *dp = NULL, *eu = NULL;
    struct pl_bsp_keys keys;
    struct pl_bsp tx, rx;
    enum pl_curve c = PL_CURVE_NONE;

    cr_assert_eq(vf->nrec, 1);
    r = &vf->rec[0];
    cr_assert_eq(pl_curve_from_name(pl_vec_get(r, "curve"), &c), PL_OK);
    pl_vec_hex_n(r, "otSK.DP", sk_dp, 32);
    pl_vec_hex_n(r, "otSK.EUICC", sk_eu, 32);
    host_len = pl_vec_hex(r, "hostId", host, sizeof(host));
    pl_vec_hex_n(r, "EID", eid, 16);
    pl_vec_hex_n(r, "otPK.DP", pk_dp, 65);
    pl_vec_hex_n(r, "otPK.EUICC", pk_eu, 65);
    pl_vec_hex_n(r, "Z", z, 32);
    info_len = pl_vec_hex(r, "sharedInfo", info, sizeof(info));
    pl_vec_hex_n(r, "MCV0", mcv0, 16);
    pl_vec_hex_n(r, "S-ENC", senc, 16);
    pl_vec_hex_n(r, "S-MAC", smac, 16);
    plain_len = pl_vec_hex(r, "plain87", plain, sizeof(plain));
    seg_len = pl_vec_hex(r, "seg87", seg, sizeof(seg));
    pl_vec_hex_n(r, "MCV1", mcv1, 16);

    /* both one-time key pairs */
    cr_assert_eq(pl_eckey_from_private(c, sk_dp, &dp), PL_OK);
    cr_assert_eq(pl_eckey_from_private(c, sk_eu, &eu), PL_OK);
    cr_assert_eq(pl_eckey_public(dp, got), PL_OK);
    cr_expect_arr_eq(got, pk_dp, 65, "otPK.DP");
    cr_assert_eq(pl_eckey_public(eu, got), PL_OK);
    cr_expect_arr_eq(got, pk_eu, 65, "otPK.EUICC");

    /* Z from both sides */
    cr_assert_eq(pl_ecdh(dp, pk_eu, got), PL_OK);
    cr_expect_arr_eq(got, z, 32, "Z = ECDH(otSK.DP, otPK.EUICC)");
    cr_assert_eq(pl_ecdh(eu, pk_dp, got), PL_OK);
    cr_expect_arr_eq(got, z, 32, "Z = ECDH(otSK.EUICC, otPK.DP)");

    /* sharedInfo: the KDF over the published sharedInfo gives the published keys ... */
    cr_assert_eq(pl_x963_kdf_sha256(z, 32, info, info_len, km, 48), PL_OK);
    cr_expect_arr_eq(km, mcv0, 16);
    cr_expect_arr_eq(km + 16, senc, 16);
    cr_expect_arr_eq(km + 32, smac, 16);
    /* ... and so does pl_bsp_derive, which builds sharedInfo from hostId and EID. */
    cr_assert_eq(pl_bsp_derive(z, host, host_len, eid, &keys), PL_OK);
    cr_expect_arr_eq(keys.mcv, mcv0, 16, "MCV0");
    cr_expect_arr_eq(keys.s_enc, senc, 16, "S-ENC");
    cr_expect_arr_eq(keys.s_mac, smac, 16, "S-MAC");

    /* first '87' segment, counter 1 */
    pl_bsp_init(&tx, &keys);
    cr_expect_eq(tx.counter, 1);
    n = wrap1(&tx, 0x87, true, plain, plain_len, got, sizeof(got));
    cr_expect_eq(n, seg_len);
    cr_expect_arr_eq(got, seg, seg_len, "first '87' segment");
    cr_expect_arr_eq(tx.k.mcv, mcv1, 16, "MCV1");
    cr_expect_eq(tx.counter, 2);

    /* and the eUICC side opens it */
    pl_bsp_init(&rx, &keys);
    cr_assert_eq(unwrap1(&rx, 0x87, true, seg, seg_len, got, sizeof(got), &n), PL_OK);
    cr_expect_eq(n, plain_len);
    cr_expect_arr_eq(got, plain, plain_len);
    cr_expect_arr_eq(rx.k.mcv, mcv1, 16);
    cr_expect_eq(rx.counter, 2);

    pl_bsp_wipe(&tx);
    pl_bsp_wipe(&rx);
    pl_bsp_keys_wipe(&keys);
    pl_eckey_free(dp);
    pl_eckey_free(eu);
    pl_vec_free(vf);
}

Test(bsp, derive_rejects_bad_host_id)
{
    uint8_t z[32] = {1}, eid[16] = {2}, host[17] = {3};
    struct pl_bsp_keys k;

    cr_expect_eq(pl_bsp_derive(z, host, 0, eid, &k), PL_ERR_INVAL);
    cr_expect_eq(pl_bsp_derive(z, host, 17, eid, &k), PL_ERR_INVAL);
    cr_expect_eq(pl_bsp_derive(z, host, 16, eid, &k), PL_OK);
    cr_expect_eq(pl_bsp_derive(z, host, 1, eid, &k), PL_OK);
    cr_expect_eq(pl_bsp_derive(NULL, host, 1, eid, &k), PL_ERR_INVAL);
    cr_expect_eq(pl_bsp_derive(z, host, 1, NULL, &k), PL_ERR_INVAL);
}

Test(bsp, init_replace_wipe)
{
    struct pl_bsp_keys k1, k2, zero;
    struct pl_bsp b;

    random_keys(&k1);
    random_keys(&k2);
    memset(&zero, 0, sizeof(zero));
    pl_bsp_init(&b, &k1);
    cr_expect_eq(b.counter, 1);
    cr_expect_arr_eq(&b.k, &k1, sizeof(k1));
    b.counter = 7;
    pl_bsp_replace(&b, &k2);
    cr_expect_eq(b.counter, 1, "ReplaceSessionKeys restarts the counter");
    cr_expect_arr_eq(&b.k, &k2, sizeof(k2));
    pl_bsp_wipe(&b);
    cr_expect_arr_eq(&b.k, &zero, sizeof(zero));
    pl_bsp_keys_wipe(&k1);
    cr_expect_arr_eq(&k1, &zero, sizeof(zero));
}

/* ---------------------------------------------------------------- round trips */

Test(bsp, round_trip_86_87_88_all_length_forms)
{
    static const size_t enc_lens[] = {0,   1,   15,  16,  17,  100, 102, 103, 111, 112,
                                      127, 128, 231, 232, 239, 240, 500, 1000, 1006, 1007};
    static const size_t mac_lens[] = {0, 1, 16, 111, 119, 120, 247, 248, 1007, 1008};
    uint8_t pt[1100], seg[1100], out[1100], chk[1100];
    struct pl_bsp tx, rx, before;
    size_t n, m, forms[5] = {0};
    uint32_t expect_ctr = 1;

    cr_assert_eq(pl_rng_system_fill(NULL, pt, sizeof(pt)), PL_OK);
    pair(&tx, &rx);
    /* one session, segments interleaved as in a BPP: 87, 88, 87, 86... (the counter
     * and MCV chain through all of them) */
    for (size_t i = 0; i < sizeof(enc_lens) / sizeof(enc_lens[0]); i++) {
        uint8_t tag = (i % 2) ? 0x86 : 0x87;

        before = tx;
        n = wrap1(&tx, tag, true, pt, enc_lens[i], seg, sizeof(seg));
        cr_expect_leq(n, PL_BSP_MAX_SEGMENT);
        cr_expect_eq(seg[0], tag);
        forms[hdr_size(seg)]++;
        cr_expect_eq(n, hdr_size(seg) + (enc_lens[i] / 16 + 1) * 16 + 8, "len %zu", enc_lens[i]);
        m = check_formulas(&before, seg, n, true, chk);
        cr_expect_eq(m, enc_lens[i]);
        cr_expect_arr_eq(chk, pt, m);
        cr_assert_eq(unwrap1(&rx, tag, true, seg, n, out, sizeof(out), &m), PL_OK,
                     "unwrap %zu", enc_lens[i]);
        cr_expect_eq(m, enc_lens[i]);
        cr_expect_arr_eq(out, pt, m);
        expect_ctr++;

        size_t ml = mac_lens[i % (sizeof(mac_lens) / sizeof(mac_lens[0]))];
        before = tx;
        n = wrap1(&tx, 0x88, false, pt + 3, ml, seg, sizeof(seg));
        forms[hdr_size(seg)]++;
        cr_expect_eq(n, hdr_size(seg) + ml + 8);
        cr_expect_arr_eq(seg + hdr_size(seg), pt + 3, ml, "'88' carries the plaintext");
        m = check_formulas(&before, seg, n, false, chk);
        cr_expect_eq(m, ml);
        cr_assert_eq(unwrap1(&rx, 0x88, false, seg, n, out, sizeof(out), &m), PL_OK);
        cr_expect_eq(m, ml);
        cr_expect_arr_eq(out, pt + 3, ml);
        expect_ctr++;
        cr_expect_eq(tx.counter, expect_ctr, "MAC-only segments advance the counter too");
        cr_expect_arr_eq(&tx, &rx, sizeof(tx), "sender and receiver stay in step");
    }
    cr_expect_gt(forms[2], 0, "short length form used");
    cr_expect_gt(forms[3], 0, "81 xx length form used");
    cr_expect_gt(forms[4], 0, "82 xx xx length form used");
    pl_bsp_wipe(&tx);
    pl_bsp_wipe(&rx);
}

Test(bsp, largest_segments_are_exactly_1020)
{
    uint8_t pt[PL_BSP_MAX_PLAIN_MAC] = {0}, seg[1100], out[1100];
    struct pl_bsp tx, rx;
    size_t n, m;

    pair(&tx, &rx);
    n = wrap1(&tx, 0x86, true, pt, PL_BSP_MAX_PLAIN_ENC, seg, sizeof(seg));
    cr_expect_eq(n, 1020);
    cr_expect_eq(seg[1], 0x82);
    cr_expect_eq(seg[2], 0x03);
    cr_expect_eq(seg[3], 0xf8);
    cr_assert_eq(unwrap1(&rx, 0x86, true, seg, n, out, sizeof(out), &m), PL_OK);
    cr_expect_eq(m, PL_BSP_MAX_PLAIN_ENC);
    n = wrap1(&tx, 0x88, false, pt, PL_BSP_MAX_PLAIN_MAC, seg, sizeof(seg));
    cr_expect_eq(n, 1020);
    cr_assert_eq(unwrap1(&rx, 0x88, false, seg, n, out, sizeof(out), &m), PL_OK);
    cr_expect_eq(m, PL_BSP_MAX_PLAIN_MAC);
}

Test(bsp, oversize_segments_refused)
{
    uint8_t pt[1100] = {0}, seg[1200] = {0};
    struct pl_bsp tx, rx, before;
    struct pl_wr w;
    size_t m;

    pair(&tx, &rx);
    before = tx;
    pl_wr_init_fixed(&w, seg, sizeof(seg));
    cr_expect_eq(pl_bsp_wrap(&tx, 0x86, true, pt, PL_BSP_MAX_PLAIN_ENC + 1, &w), PL_ERR_OVERFLOW);
    cr_expect_eq(pl_bsp_wrap(&tx, 0x88, false, pt, PL_BSP_MAX_PLAIN_MAC + 1, &w),
                 PL_ERR_OVERFLOW);
    cr_expect_eq(w.len, 0);
    cr_expect_arr_eq(&tx, &before, sizeof(tx), "state unchanged");

    /* A received TLV of 1021+ bytes is refused before anything else. */
    seg[0] = 0x86;
    seg[1] = 0x82;
    seg[2] = 0x03;
    seg[3] = 0xf9; /* 1017 bytes of content: 1021 in all */
    cr_expect_eq(unwrap1(&rx, 0x86, true, seg, 1021, pt, sizeof(pt), &m), PL_ERR_OVERFLOW);
    cr_expect_eq(m, 0);
    cr_expect_arr_eq(&rx, &before, sizeof(rx));
}

Test(bsp, output_writer_full_leaves_state)
{
    uint8_t pt[40] = {1}, small[30], seg[128], out[8];
    struct pl_bsp tx, rx, before;
    struct pl_wr w;
    size_t n, m;

    pair(&tx, &rx);
    before = tx;
    pl_wr_init_fixed(&w, small, sizeof(small));
    cr_expect_eq(pl_bsp_wrap(&tx, 0x87, true, pt, sizeof(pt), &w), PL_ERR_OVERFLOW);
    cr_expect_arr_eq(&tx, &before, sizeof(tx));
    n = wrap1(&tx, 0x87, true, pt, sizeof(pt), seg, sizeof(seg));
    before = rx;
    cr_expect_eq(unwrap1(&rx, 0x87, true, seg, n, out, sizeof(out), &m), PL_ERR_OVERFLOW);
    cr_expect_arr_eq(&rx, &before, sizeof(rx));
}

/* ---------------------------------------------------------------- attacks */

Test(bsp, mac_tamper_every_byte)
{
    uint8_t pt[200], seg[300], bad[300], out[300];
    struct pl_bsp tx, rx, before;
    size_t n, m;

    cr_assert_eq(pl_rng_system_fill(NULL, pt, sizeof(pt)), PL_OK);
    for (int enc = 0; enc < 2; enc++) {
        uint8_t tag = enc ? 0x86 : 0x88;

        pair(&tx, &rx);
        n = wrap1(&tx, tag, enc, pt, sizeof(pt), seg, sizeof(seg));
        cr_assert_eq(seg[1], 0x81); /* long form header */
        before = rx;
        for (size_t i = 0; i < n; i++) {
            int rc;

            memcpy(bad, seg, n);
            bad[i] ^= 0x04;
            rc = unwrap1(&rx, tag, enc, bad, n, out, sizeof(out), &m);
            cr_expect_neq(rc, PL_OK, "byte %zu flipped", i);
            if (i >= 3) /* past tag and length: only the MAC can catch it */
                cr_expect_eq(rc, PL_ERR_BAD_MAC, "byte %zu: %d", i, rc);
            cr_expect_eq(m, 0, "nothing written on failure");
            cr_expect_arr_eq(&rx, &before, sizeof(rx), "state unchanged (byte %zu)", i);
        }
        /* The genuine segment still opens after all the failures. */
        cr_assert_eq(unwrap1(&rx, tag, enc, seg, n, out, sizeof(out), &m), PL_OK);
        cr_expect_eq(m, sizeof(pt));
        cr_expect_arr_eq(out, pt, m);
    }
}

Test(bsp, reordered_replayed_and_dropped_segments_fail)
{
    uint8_t s1[64], s2[64], s3[64], out[64];
    size_t n1, n2, n3, m;
    struct pl_bsp tx, rx, before;

    pair(&tx, &rx);
    n1 = wrap1(&tx, 0x86, true, (const uint8_t *)"one", 3, s1, sizeof(s1));
    n2 = wrap1(&tx, 0x86, true, (const uint8_t *)"two", 3, s2, sizeof(s2));
    n3 = wrap1(&tx, 0x86, true, (const uint8_t *)"three", 5, s3, sizeof(s3));
    before = rx;
    cr_expect_eq(unwrap1(&rx, 0x86, true, s2, n2, out, sizeof(out), &m), PL_ERR_BAD_MAC,
                 "second before first");
    cr_expect_eq(unwrap1(&rx, 0x86, true, s3, n3, out, sizeof(out), &m), PL_ERR_BAD_MAC,
                 "first dropped");
    cr_expect_arr_eq(&rx, &before, sizeof(rx));
    cr_assert_eq(unwrap1(&rx, 0x86, true, s1, n1, out, sizeof(out), &m), PL_OK);
    cr_expect_eq(unwrap1(&rx, 0x86, true, s1, n1, out, sizeof(out), &m), PL_ERR_BAD_MAC,
                 "replay of the first");
    cr_assert_eq(unwrap1(&rx, 0x86, true, s2, n2, out, sizeof(out), &m), PL_OK);
    cr_assert_eq(unwrap1(&rx, 0x86, true, s3, n3, out, sizeof(out), &m), PL_OK);
    cr_expect_eq(m, 5);
    cr_expect_arr_eq(out, "three", 5);
}

Test(bsp, other_session_keys_fail)
{
    uint8_t seg[64], out[64];
    size_t n, m;
    struct pl_bsp tx, rx, rx2, tx2;

    pair(&tx, &rx);
    pair(&tx2, &rx2);
    n = wrap1(&tx, 0x87, true, (const uint8_t *)"abc", 3, seg, sizeof(seg));
    cr_expect_eq(unwrap1(&rx2, 0x87, true, seg, n, out, sizeof(out), &m), PL_ERR_BAD_MAC);
    /* after ReplaceSessionKeys the old keys no longer open anything */
    pl_bsp_replace(&rx, &rx2.k);
    cr_expect_eq(unwrap1(&rx, 0x87, true, seg, n, out, sizeof(out), &m), PL_ERR_BAD_MAC);
}

Test(bsp, tag_mismatch_is_malformed)
{
    uint8_t seg[64], out[64];
    size_t n, m;
    struct pl_bsp tx, rx, before;

    pair(&tx, &rx);
    n = wrap1(&tx, 0x87, true, (const uint8_t *)"abc", 3, seg, sizeof(seg));
    before = rx;
    cr_expect_eq(unwrap1(&rx, 0x86, true, seg, n, out, sizeof(out), &m), PL_ERR_MALFORMED);
    cr_expect_arr_eq(&rx, &before, sizeof(rx));
    cr_expect_eq(unwrap1(&rx, 0x87, true, seg, n, out, sizeof(out), &m), PL_OK);
}

/* Builds a segment whose MAC is right but whose decrypted body is body (already
 * "padded" as the test wants); returns its length. */
static size_t forge(const struct pl_bsp *b, uint8_t tag, const uint8_t *body, size_t len,
                    uint8_t *seg)
{
    uint8_t ctr[16] = {0}, icv[16], mac[16];
    size_t h = 2;
    struct pl_iov iov[2];

    cr_assert(len % 16 == 0 && len + 8 < 0x80);
    seg[0] = tag;
    seg[1] = (uint8_t)(len + 8);
    ctr[15] = (uint8_t)b->counter;
    cr_assert_eq(pl_aes128_ecb_block(b->k.s_enc, ctr, icv), PL_OK);
    cr_assert_eq(pl_aes128_cbc_encrypt(b->k.s_enc, icv, body, len, seg + h), PL_OK);
    iov[0].p = b->k.mcv;
    iov[0].len = 16;
    iov[1].p = seg;
    iov[1].len = h + len;
    cr_assert_eq(pl_aes_cmac(b->k.s_mac, iov, 2, mac), PL_OK);
    memcpy(seg + h + len, mac, 8);
    return h + len + 8;
}

Test(bsp, bad_padding_refused)
{
    struct pl_bsp tx, rx, before;
    uint8_t body[32], seg[64], out[64];
    size_t n, m;

    pair(&tx, &rx);
    before = rx;

    /* sanity: a forged segment with proper padding opens */
    memset(body, 0, sizeof(body));
    memcpy(body, "hi", 2);
    body[2] = 0x80;
    n = forge(&rx, 0x86, body, 16, seg);
    {
        struct pl_bsp probe = rx;

        cr_assert_eq(unwrap1(&probe, 0x86, true, seg, n, out, sizeof(out), &m), PL_OK);
        cr_expect_eq(m, 2);
    }

    /* last block all zeros: no 80 at all */
    memset(body, 0, sizeof(body));
    n = forge(&rx, 0x86, body, 16, seg);
    cr_expect_eq(unwrap1(&rx, 0x86, true, seg, n, out, sizeof(out), &m), PL_ERR_BAD_PADDING);
    /* ends in 01 */
    body[15] = 0x01;
    n = forge(&rx, 0x86, body, 16, seg);
    cr_expect_eq(unwrap1(&rx, 0x86, true, seg, n, out, sizeof(out), &m), PL_ERR_BAD_PADDING);
    /* 80 followed by a non-zero byte */
    memset(body, 0, sizeof(body));
    body[10] = 0x80;
    body[12] = 0x01;
    n = forge(&rx, 0x86, body, 16, seg);
    cr_expect_eq(unwrap1(&rx, 0x86, true, seg, n, out, sizeof(out), &m), PL_ERR_BAD_PADDING);
    /* 80 in the previous block and a whole block of zeros after it (17 bytes) */
    memset(body, 0, sizeof(body));
    body[15] = 0x80;
    n = forge(&rx, 0x86, body, 32, seg);
    cr_expect_eq(unwrap1(&rx, 0x86, true, seg, n, out, sizeof(out), &m), PL_ERR_BAD_PADDING);
    cr_expect_eq(m, 0);
    cr_expect_arr_eq(&rx, &before, sizeof(rx), "state unchanged after bad padding");
}

Test(bsp, malformed_structures)
{
    struct pl_bsp tx, rx, before;
    uint8_t seg[300], bad[300], out[300], pt[200] = {0};
    size_t n, m;
    struct pl_wr w;

    pair(&tx, &rx);
    before = rx;
    n = wrap1(&tx, 0x87, true, pt, 20, seg, sizeof(seg)); /* 87 28 <32 ct> <8 mac> */
    cr_assert_eq(n, 42);

    /* non-minimal length 81 28 (same content) */
    bad[0] = 0x87;
    bad[1] = 0x81;
    memcpy(bad + 2, seg + 1, n - 1);
    cr_expect_eq(unwrap1(&rx, 0x87, true, bad, n + 1, out, sizeof(out), &m), PL_ERR_MALFORMED);
    /* 82 00 28 */
    bad[1] = 0x82;
    bad[2] = 0x00;
    memcpy(bad + 3, seg + 1, n - 1);
    cr_expect_eq(unwrap1(&rx, 0x87, true, bad, n + 2, out, sizeof(out), &m), PL_ERR_MALFORMED);
    /* indefinite length */
    memcpy(bad, seg, n);
    bad[1] = 0x80;
    cr_expect_eq(unwrap1(&rx, 0x87, true, bad, n, out, sizeof(out), &m), PL_ERR_MALFORMED);
    /* 83 xx xx xx */
    bad[1] = 0x83;
    cr_expect_eq(unwrap1(&rx, 0x87, true, bad, n, out, sizeof(out), &m), PL_ERR_MALFORMED);
    /* truncated, and a trailing byte */
    cr_expect_eq(unwrap1(&rx, 0x87, true, seg, n - 1, out, sizeof(out), &m), PL_ERR_MALFORMED);
    memcpy(bad, seg, n);
    bad[n] = 0;
    cr_expect_eq(unwrap1(&rx, 0x87, true, bad, n + 1, out, sizeof(out), &m), PL_ERR_MALFORMED);
    /* empty, tag only, tag + short length only */
    cr_expect_eq(unwrap1(&rx, 0x87, true, NULL, 0, out, sizeof(out), &m), PL_ERR_MALFORMED);
    cr_expect_eq(unwrap1(&rx, 0x87, true, seg, 1, out, sizeof(out), &m), PL_ERR_MALFORMED);
    cr_expect_eq(unwrap1(&rx, 0x87, true, seg, 2, out, sizeof(out), &m), PL_ERR_MALFORMED);
    /* content shorter than a MAC */
    bad[0] = 0x88;
    bad[1] = 0x07;
    memset(bad + 2, 0, 7);
    cr_expect_eq(unwrap1(&rx, 0x88, false, bad, 9, out, sizeof(out), &m), PL_ERR_MALFORMED);
    /* encrypted body not a whole number of blocks, or empty */
    bad[0] = 0x87;
    bad[1] = 0x08 + 15;
    cr_expect_eq(unwrap1(&rx, 0x87, true, bad, 2 + 23, out, sizeof(out), &m), PL_ERR_MALFORMED);
    bad[1] = 0x08;
    cr_expect_eq(unwrap1(&rx, 0x87, true, bad, 2 + 8, out, sizeof(out), &m), PL_ERR_MALFORMED);
    cr_expect_arr_eq(&rx, &before, sizeof(rx), "state unchanged");
    /* the real one still opens */
    cr_expect_eq(unwrap1(&rx, 0x87, true, seg, n, out, sizeof(out), &m), PL_OK);

    pl_wr_init_fixed(&w, out, sizeof(out));
    cr_expect_eq(pl_bsp_unwrap(NULL, 0x87, true, seg, n, &w), PL_ERR_INVAL);
    cr_expect_eq(pl_bsp_unwrap(&rx, 0x87, true, NULL, 5, &w), PL_ERR_INVAL);
    cr_expect_eq(pl_bsp_wrap(&tx, 0x87, true, NULL, 5, &w), PL_ERR_INVAL);
    cr_expect_eq(pl_bsp_wrap(&tx, 0x87, true, pt, 5, NULL), PL_ERR_INVAL);
}

Test(bsp, counter_exhaustion)
{
    struct pl_bsp tx, rx;
    uint8_t seg[64], out[64];
    struct pl_wr w;
    size_t n, m;

    pair(&tx, &rx);
    tx.counter = rx.counter = UINT32_MAX;
    n = wrap1(&tx, 0x86, true, (const uint8_t *)"x", 1, seg, sizeof(seg));
    cr_assert_eq(unwrap1(&rx, 0x86, true, seg, n, out, sizeof(out), &m), PL_OK);
    cr_expect_eq(tx.counter, 0);
    pl_wr_init_fixed(&w, seg, sizeof(seg));
    cr_expect_eq(pl_bsp_wrap(&tx, 0x86, true, (const uint8_t *)"x", 1, &w), PL_ERR_STATE);
    cr_expect_eq(unwrap1(&rx, 0x86, true, seg, n, out, sizeof(out), &m), PL_ERR_STATE);
}
