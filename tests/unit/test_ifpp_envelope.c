/* Unit tests: provline's IFPP package envelope 'FF70' (protocol/ifpp_envelope.h,
 * docs/ifpp-es10f.md §2): round trips on P-256 and brainpoolP256r1 with real keys and a
 * real SGP.22 BPP, signature over the received bytes (every byte of the signed part
 * flipped), wrong keys, strict rejection of truncated / oversized / wrong-tag / trailing /
 * out-of-range inputs with the documented errors, the station's target and time checks.
 * Also (re)writes the fuzz seeds of tests/fuzz/corpus/ifpp_envelope/ when PL_REGEN_CORPUS
 * is set, and checks the committed seeds decode. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pl_test.h"
#include "provline/protocol/bpp.h"
#include "provline/protocol/bpp_bind.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/der.h"
#include "provline/protocol/ifpp_envelope.h"

static const uint8_t EID[16] = {0x89, 0x04, 0x90, 0x32, 0x12, 0x34, 0x51, 0x23,
                                0x45, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x35};
static const uint8_t TID[16] = {0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8,
                                0xA9, 0xAA, 0xAB, 0xAC, 0xAD, 0xAE, 0xAF, 0xB0};
static const uint8_t PKG_ID[16] = {0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
                                   0x18, 0x19, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E, 0x1F};

/* ---- fixtures ---- */

static uint8_t *read_src(const char *rel, size_t *len)
{
    char path[512];
    uint8_t *b = pl_test_read_file(pl_test_src(path, sizeof(path), rel), len);
    cr_assert_not_null(b, "cannot read %s", path);
    return b;
}

/* A small, structurally faithful BPP: BF36 { BF23 { 82 01 01, 80 tid, A6 {..}, 5F49 65 B,
 * 5F37 64 B }, A0 { 87 }, A1 { 88 }, A3 { 86 86 } }. Contents are not cryptographically
 * meaningful (the envelope treats the BPP as opaque). */
static void fake_bpp(struct pl_wr *w, const uint8_t *tid, size_t tid_len)
{
    uint8_t pt[65], sig[64], seg[40];
    static const uint8_t crt[] = {0x80, 0x01, 0x88, 0x81, 0x01, 0x10, 0x84, 0x01, 0x01};
    memset(pt, 0x04, sizeof(pt));
    memset(sig, 0x55, sizeof(sig));
    for (size_t i = 0; i < sizeof(seg); i++)
        seg[i] = (uint8_t)(i * 7u);
    size_t m = pl_der_begin(w, 0xBF36);
    size_t i = pl_der_begin(w, 0xBF23);
    pl_der_put_uint(w, 0x82, 1);
    pl_der_put_tlv(w, 0x80, tid, tid_len);
    pl_der_put_tlv(w, 0xA6, crt, sizeof(crt));
    pl_der_put_tlv(w, 0x5F49, pt, sizeof(pt));
    pl_der_put_tlv(w, 0x5F37, sig, sizeof(sig));
    pl_der_end(w, i);
    size_t a0 = pl_der_begin(w, 0xA0);
    pl_der_put_tlv(w, 0x87, seg, 24);
    pl_der_end(w, a0);
    size_t a1 = pl_der_begin(w, 0xA1);
    pl_der_put_tlv(w, 0x88, seg, 16);
    pl_der_end(w, a1);
    size_t a3 = pl_der_begin(w, 0xA3);
    pl_der_put_tlv(w, 0x86, seg, 40);
    pl_der_put_tlv(w, 0x86, seg, 32);
    pl_der_end(w, a3);
    cr_assert_eq(pl_der_end(w, m), PL_OK);
}

struct fix {
    struct pl_eckey *km;  /* Key Maker envelope key */
    struct pl_eckey *otk; /* the eUICC one-time key the package targets */
    uint8_t otpk[PL_EC_PUB_LEN];
    uint8_t *cert_dp, *cert_ci;
    size_t cert_dp_len, cert_ci_len;
    struct pl_wr bpp;
    struct pl_ifpp_pkg pkg; /* ready to encode */
};

static void fix_init(struct fix *f, enum pl_curve c)
{
    struct pl_rng rng = PL_RNG_SYSTEM;
    memset(f, 0, sizeof(*f));
    cr_assert_eq(pl_eckey_generate(c, &rng, &f->km), PL_OK);
    cr_assert_eq(pl_eckey_generate(c, &rng, &f->otk), PL_OK);
    cr_assert_eq(pl_eckey_public(f->otk, f->otpk), PL_OK);
    const bool bp = c == PL_CURVE_BP256R1;
    f->cert_dp = read_src(bp ? "tests/data/sgp26/pysim-dppb/CERT_S_SM_DPpb_ECDSA_BRP.der"
                             : "tests/data/sgp26/pysim-dppb/CERT_S_SM_DPpb_ECDSA_NIST.der",
                          &f->cert_dp_len);
    f->cert_ci = read_src(bp ? "tests/data/sgp26/pysim-dppb/CERT_CI_ECDSA_BRP.der"
                             : "tests/data/sgp26/pysim-dppb/CERT_CI_ECDSA_NIST.der",
                          &f->cert_ci_len);
    pl_wr_init_dyn(&f->bpp, PL_IFPP_BPP_MAX);
    fake_bpp(&f->bpp, TID, sizeof(TID));

    struct pl_ifpp_pkg *p = &f->pkg;
    memcpy(p->package_id, PKG_ID, sizeof(PKG_ID));
    static const char batch[] = "batch-2026-11/line-3 \xC3\xA9"; /* UTF-8 e-acute */
    memcpy(p->batch_id, batch, sizeof(batch));
    memcpy(p->eid, EID, sizeof(EID));
    p->otk_id = 0x0102;
    cr_assert_eq(pl_sha256(f->otpk, PL_EC_PUB_LEN, p->otpk_hash), PL_OK);
    p->tid = TID;
    p->tid_len = sizeof(TID);
    p->curve = c;
    p->not_after = 1798761600u;             /* 2027-01-01T00:00:00Z */
    p->key_maker_seq = 0x8000000000000001u; /* needs the 9-byte INTEGER form */
    p->dpf_chain.n = 2;
    p->dpf_chain.cert[0].der = f->cert_dp;
    p->dpf_chain.cert[0].len = f->cert_dp_len;
    p->dpf_chain.cert[1].der = f->cert_ci;
    p->dpf_chain.cert[1].len = f->cert_ci_len;
    p->bpp = f->bpp.buf;
    p->bpp_len = f->bpp.len;
}

static void fix_free(struct fix *f)
{
    pl_eckey_free(f->km);
    pl_eckey_free(f->otk);
    free(f->cert_dp);
    free(f->cert_ci);
    pl_wr_free(&f->bpp);
}

/* Encodes and signs f->pkg into a fresh dynamic writer. */
static void seal(struct fix *f, struct pl_wr *w)
{
    struct pl_rng rng = PL_RNG_SYSTEM;
    pl_wr_init_dyn(w, PL_IFPP_PKG_MAX);
    cr_assert_eq(pl_ifpp_pkg_encode_sign(&f->pkg, f->km, &rng, w), PL_OK);
}

/* ---- round trips ---- */

static void roundtrip(enum pl_curve c)
{
    struct fix f;
    struct pl_wr w, w2;
    struct pl_ifpp_pkg d;
    fix_init(&f, c);
    seal(&f, &w);

    cr_assert_eq(pl_ifpp_pkg_decode(w.buf, w.len, &d), PL_OK);
    cr_assert_arr_eq(d.package_id, PKG_ID, 16);
    cr_assert_str_eq(d.batch_id, f.pkg.batch_id);
    cr_assert_arr_eq(d.eid, EID, 16);
    cr_assert_eq(d.otk_id, 0x0102);
    cr_assert_arr_eq(d.otpk_hash, f.pkg.otpk_hash, 32);
    cr_assert_eq(d.tid_len, 16);
    cr_assert_arr_eq(d.tid, TID, 16);
    cr_assert_eq(d.curve, c);
    cr_assert_eq(d.not_after, 1798761600u);
    cr_assert_eq(d.key_maker_seq, 0x8000000000000001u);
    cr_assert_eq(d.dpf_chain.n, 2);
    cr_assert_eq(d.dpf_chain.cert[0].len, f.cert_dp_len);
    cr_assert_arr_eq(d.dpf_chain.cert[0].der, f.cert_dp, f.cert_dp_len);
    cr_assert_arr_eq(d.dpf_chain.cert[1].der, f.cert_ci, f.cert_ci_len);
    /* The BPP is carried byte-exact. */
    cr_assert_eq(d.bpp_len, f.bpp.len);
    cr_assert_arr_eq(d.bpp, f.bpp.buf, f.bpp.len);
    /* Views point into the input. */
    cr_assert(d.bpp > w.buf && d.bpp + d.bpp_len <= w.buf + w.len);
    cr_assert_eq(d.raw, w.buf);
    cr_assert_eq(d.raw_len, w.len);
    cr_assert_eq(d.signed_raw[0], 0xFF);
    cr_assert_eq(d.signed_raw[1], 0x79);
    cr_assert_eq(d.signed_raw + d.signed_raw_len + 3 + 64, w.buf + w.len,
                 "signed part ends right before the 5F37 TLV");

    cr_assert_eq(pl_ifpp_pkg_verify(&d, f.km), PL_OK);

    /* Canonical: re-encoding the decoded view with its signature gives the same bytes. */
    pl_wr_init_dyn(&w2, PL_IFPP_PKG_MAX);
    cr_assert_eq(pl_ifpp_pkg_encode(&d, &w2), PL_OK);
    cr_assert_eq(w2.len, w.len);
    cr_assert_arr_eq(w2.buf, w.buf, w.len);

    /* The to-be-signed part on its own is exactly the signed_raw slice. */
    pl_wr_reset(&w2);
    cr_assert_eq(pl_ifpp_pkg_encode_tbs(&f.pkg, &w2), PL_OK);
    cr_assert_eq(w2.len, d.signed_raw_len);
    cr_assert_arr_eq(w2.buf, d.signed_raw, w2.len);

    pl_wr_free(&w2);
    pl_wr_free(&w);
    fix_free(&f);
}

Test(ifpp_envelope, roundtrip_p256)
{
    roundtrip(PL_CURVE_P256);
}

Test(ifpp_envelope, roundtrip_brainpool)
{
    roundtrip(PL_CURVE_BP256R1);
}

Test(ifpp_envelope, external_signer_matches_encode_sign)
{
    /* An HSM-style flow: sign encode_tbs() output, then pl_ifpp_pkg_encode(). */
    struct fix f;
    struct pl_wr tbs, w;
    struct pl_ifpp_pkg d;
    struct pl_rng rng = PL_RNG_SYSTEM;
    fix_init(&f, PL_CURVE_P256);
    pl_wr_init_dyn(&tbs, PL_IFPP_PKG_MAX);
    cr_assert_eq(pl_ifpp_pkg_encode_tbs(&f.pkg, &tbs), PL_OK);
    cr_assert_eq(pl_ecdsa_sign(f.km, tbs.buf, tbs.len, &rng, f.pkg.env_sig), PL_OK);
    pl_wr_init_dyn(&w, PL_IFPP_PKG_MAX);
    cr_assert_eq(pl_ifpp_pkg_encode(&f.pkg, &w), PL_OK);
    cr_assert_eq(pl_ifpp_pkg_decode(w.buf, w.len, &d), PL_OK);
    cr_assert_eq(pl_ifpp_pkg_verify(&d, f.km), PL_OK);
    cr_assert_arr_eq(d.env_sig, f.pkg.env_sig, 64);
    pl_wr_free(&tbs);
    pl_wr_free(&w);
    fix_free(&f);
}

/* A real SGP.22 BPP (TS.48 profile bound by bpp_bind.c) inside the envelope: after
 * decoding, the BPP still decodes with bpp.h and its smdpSign still verifies with the
 * targeted otPK, i.e. the envelope kept it byte-exact. */
static void real_bpp(enum pl_curve c)
{
    struct fix f;
    struct pl_wr bpp, w;
    struct pl_ifpp_pkg d;
    struct pl_rng rng = PL_RNG_SYSTEM;
    struct pl_eckey *dp = NULL;
    static const uint8_t host[8] = {'H', 'O', 'S', 'T', 'I', 'D', '0', '1'};
    size_t upp_len;
    fix_init(&f, c);
    uint8_t *upp = read_src("tests/data/ts48/TS48V1-A-UNIQUE.der", &upp_len);
    cr_assert_eq(pl_eckey_generate(c, &rng, &dp), PL_OK);
    struct pl_bind_params bp = {
        .curve = c,
        .dp_key = dp,
        .euicc_otpk = f.otpk,
        .eid = EID,
        .host_id = host,
        .host_id_len = sizeof(host),
        .tid = TID,
        .tid_len = sizeof(TID),
        .upp = upp,
        .upp_len = upp_len,
        .spn = "provline",
        .profile_name = "TS.48",
        .profile_class = 2,
        .rng = &rng,
    };
    pl_wr_init_dyn(&bpp, PL_BIND_BPP_MAX);
    cr_assert_eq(pl_bpp_bind(&bp, &bpp), PL_OK);
    f.pkg.bpp = bpp.buf;
    f.pkg.bpp_len = bpp.len;
    seal(&f, &w);

    cr_assert_eq(pl_ifpp_pkg_decode(w.buf, w.len, &d), PL_OK);
    cr_assert_eq(pl_ifpp_pkg_verify(&d, f.km), PL_OK);
    cr_assert_eq(pl_ifpp_pkg_check_target(&d, EID, 0x0102, f.otpk), PL_OK);
    cr_assert_arr_eq(d.bpp, bpp.buf, bpp.len);

    struct pl_bpp *b = malloc(sizeof(*b));
    cr_assert_not_null(b);
    cr_assert_eq(pl_bpp_decode(d.bpp, d.bpp_len, b), PL_OK);
    cr_assert_eq(b->iscr.tid_len, d.tid_len);
    cr_assert_arr_eq(b->iscr.tid, d.tid, d.tid_len);
    cr_assert_eq(pl_iscr_verify(&b->iscr, f.otpk, dp), PL_OK);
    free(b);

    pl_eckey_free(dp);
    free(upp);
    pl_wr_free(&bpp);
    pl_wr_free(&w);
    fix_free(&f);
}

Test(ifpp_envelope, real_bpp_p256)
{
    real_bpp(PL_CURVE_P256);
}

Test(ifpp_envelope, real_bpp_brainpool)
{
    real_bpp(PL_CURVE_BP256R1);
}

/* ---- signature ---- */

Test(ifpp_envelope, wrong_key_fails)
{
    struct fix f;
    struct pl_wr w;
    struct pl_ifpp_pkg d;
    struct pl_rng rng = PL_RNG_SYSTEM;
    struct pl_eckey *other = NULL, *other_bp = NULL;
    fix_init(&f, PL_CURVE_P256);
    seal(&f, &w);
    cr_assert_eq(pl_ifpp_pkg_decode(w.buf, w.len, &d), PL_OK);
    cr_assert_eq(pl_eckey_generate(PL_CURVE_P256, &rng, &other), PL_OK);
    cr_assert_eq(pl_eckey_generate(PL_CURVE_BP256R1, &rng, &other_bp), PL_OK);
    cr_assert_eq(pl_ifpp_pkg_verify(&d, other), PL_ERR_BAD_SIGNATURE);
    cr_assert_neq(pl_ifpp_pkg_verify(&d, other_bp), PL_OK);
    /* The eUICC's OTK is not the Key Maker's key either. */
    cr_assert_eq(pl_ifpp_pkg_verify(&d, f.otk), PL_ERR_BAD_SIGNATURE);
    /* A view that was not decoded cannot be verified. */
    cr_assert_eq(pl_ifpp_pkg_verify(&f.pkg, f.km), PL_ERR_INVAL);
    pl_eckey_free(other);
    pl_eckey_free(other_bp);
    pl_wr_free(&w);
    fix_free(&f);
}

/* Flip one bit in every `stride`-th byte of the signed part 'FF79' and of the signature
 * (stride 1: every byte): the result must never be accepted (decode error, or decoded but
 * signature rejected). Most flips must reach the signature check (strict DER rejects the
 * rest). One certificate in the chain keeps the run short. */
static void flip_every_byte(enum pl_curve c, size_t stride)
{
    struct fix f;
    struct pl_wr w;
    struct pl_ifpp_pkg d;
    fix_init(&f, c);
    f.pkg.dpf_chain.n = 1;
    seal(&f, &w);
    cr_assert_eq(pl_ifpp_pkg_decode(w.buf, w.len, &d), PL_OK);
    size_t start = (size_t)(d.signed_raw - w.buf);
    size_t end = w.len; /* through the signature */
    size_t sig_rejected = 0, decode_rejected = 0;
    uint8_t *buf = malloc(w.len);
    cr_assert_not_null(buf);
    size_t tried = 0;
    for (size_t i = start; i < end; i += stride) {
        tried++;
        memcpy(buf, w.buf, w.len);
        buf[i] ^= (uint8_t)(1u << (i % 8u));
        struct pl_ifpp_pkg m;
        int rc = pl_ifpp_pkg_decode(buf, w.len, &m);
        if (rc != PL_OK) {
            decode_rejected++;
            continue;
        }
        cr_assert_eq(pl_ifpp_pkg_verify(&m, f.km), PL_ERR_BAD_SIGNATURE,
                     "flip at offset %zu was accepted", i);
        sig_rejected++;
    }
    cr_assert_eq(sig_rejected + decode_rejected, tried);
    cr_assert_gt(sig_rejected, tried / 2, "only %zu of %zu flips reached the signature",
                 sig_rejected, tried);
    free(buf);
    pl_wr_free(&w);
    fix_free(&f);
}

Test(ifpp_envelope, bit_flips_p256)
{
    flip_every_byte(PL_CURVE_P256, 1);
}

Test(ifpp_envelope, bit_flips_brainpool)
{
    flip_every_byte(PL_CURVE_BP256R1, 5); /* brainpool verifies ~5x slower */
}

/* Each field on its own: a changed value that is still well-formed decodes and fails
 * the signature. */
Test(ifpp_envelope, every_field_is_signed)
{
    struct fix f;
    struct pl_wr w;
    struct pl_ifpp_pkg d;
    fix_init(&f, PL_CURVE_P256);
    seal(&f, &w);
    cr_assert_eq(pl_ifpp_pkg_decode(w.buf, w.len, &d), PL_OK);
    /* Offsets of each field's last contents byte, found by walking the signed part. */
    struct pl_der s, top;
    struct pl_tlv t;
    pl_der_init(&top, d.signed_raw, d.signed_raw_len);
    cr_assert_eq(pl_der_next(&top, &t), PL_OK);
    cr_assert_eq(pl_der_enter(&top, &t, &s), PL_OK);
    int fields = 0;
    while (!pl_der_done(&s)) {
        cr_assert_eq(pl_der_next(&s, &t), PL_OK);
        fields++;
        if (t.tag == 0x80 || t.tag == 0x86 || t.tag == 0x87)
            continue; /* version, tid, curve: changing them is a decode error (below) */
        size_t off = (size_t)(t.value - w.buf) + t.len - 1;
        uint8_t *buf = malloc(w.len);
        memcpy(buf, w.buf, w.len);
        buf[off] ^= 0x01; /* low bit of the last byte: still minimal, still UTF-8 */
        struct pl_ifpp_pkg m;
        cr_assert_eq(pl_ifpp_pkg_decode(buf, w.len, &m), PL_OK, "field %x", t.tag);
        cr_assert_eq(pl_ifpp_pkg_verify(&m, f.km), PL_ERR_BAD_SIGNATURE, "field %x", t.tag);
        free(buf);
    }
    cr_assert_eq(fields, 12);
    pl_wr_free(&w);
    fix_free(&f);
}

/* ---- rejection of malformed input ---- */

/* Rebuilds an envelope from `src` with the signed part's child `tag` replaced by
 * [repl, repl+rlen) (removed when repl is NULL and rlen 0; when tag is 0, repl is
 * appended after the last child). The signature is copied, not recomputed. */
static void rebuild(const struct pl_wr *src, uint32_t tag, const uint8_t *repl, size_t rlen,
                    struct pl_wr *out)
{
    struct pl_ifpp_pkg d;
    cr_assert_eq(pl_ifpp_pkg_decode(src->buf, src->len, &d), PL_OK);
    struct pl_der top, s;
    struct pl_tlv t;
    pl_der_init(&top, d.signed_raw, d.signed_raw_len);
    cr_assert_eq(pl_der_next(&top, &t), PL_OK);
    cr_assert_eq(pl_der_enter(&top, &t, &s), PL_OK);
    pl_wr_init_dyn(out, 2 * PL_IFPP_PKG_MAX);
    size_t m = pl_der_begin(out, 0xFF70);
    size_t m2 = pl_der_begin(out, 0xFF79);
    while (!pl_der_done(&s)) {
        cr_assert_eq(pl_der_next(&s, &t), PL_OK);
        if (tag != 0 && t.tag == tag)
            pl_wr_bytes(out, repl, rlen);
        else
            pl_wr_bytes(out, t.raw, t.raw_len);
    }
    if (tag == 0)
        pl_wr_bytes(out, repl, rlen);
    pl_der_end(out, m2);
    pl_der_put_tlv(out, 0x5F37, d.env_sig, 64);
    cr_assert_eq(pl_der_end(out, m), PL_OK);
}

static int decode_with(const struct pl_wr *src, uint32_t tag, const uint8_t *repl, size_t rlen)
{
    struct pl_wr w;
    struct pl_ifpp_pkg d;
    rebuild(src, tag, repl, rlen, &w);
    int rc = pl_ifpp_pkg_decode(w.buf, w.len, &d);
    pl_wr_free(&w);
    return rc;
}

Test(ifpp_envelope, rebuild_identity)
{
    struct fix f;
    struct pl_wr w, r;
    fix_init(&f, PL_CURVE_P256);
    seal(&f, &w);
    rebuild(&w, 0, NULL, 0, &r);
    cr_assert_eq(r.len, w.len);
    cr_assert_arr_eq(r.buf, w.buf, w.len);
    pl_wr_free(&r);
    pl_wr_free(&w);
    fix_free(&f);
}

Test(ifpp_envelope, field_values_rejected)
{
    struct fix f;
    struct pl_wr w;
    fix_init(&f, PL_CURVE_P256);
    seal(&f, &w);
    uint8_t b[80];
    memset(b, 0x41, sizeof(b));
    b[0] = 0x81;
    b[1] = 15; /* packageId of 15 bytes */
    cr_assert_eq(decode_with(&w, 0x81, b, 17), PL_ERR_DER_VALUE);
    b[1] = 17;
    cr_assert_eq(decode_with(&w, 0x81, b, 19), PL_ERR_DER_VALUE);
    b[0] = 0x83;
    b[1] = 15; /* EID of 15 bytes */
    cr_assert_eq(decode_with(&w, 0x83, b, 17), PL_ERR_DER_VALUE);
    b[0] = 0x85;
    b[1] = 31; /* otkPkHash of 31 bytes */
    cr_assert_eq(decode_with(&w, 0x85, b, 33), PL_ERR_DER_VALUE);
    b[0] = 0x82;
    b[1] = 0; /* empty batchId */
    cr_assert_eq(decode_with(&w, 0x82, b, 2), PL_ERR_DER_VALUE);
    b[1] = 65; /* 65-byte batchId */
    cr_assert_eq(decode_with(&w, 0x82, b, 67), PL_ERR_DER_VALUE);
    b[1] = 64; /* 64 bytes is fine */
    cr_assert_eq(decode_with(&w, 0x82, b, 66), PL_OK);
    static const uint8_t bad_utf8[] = {0x82, 0x02, 0xC0, 0xAF}; /* overlong '/' */
    cr_assert_eq(decode_with(&w, 0x82, bad_utf8, sizeof(bad_utf8)), PL_ERR_DER_VALUE);
    static const uint8_t nul_utf8[] = {0x82, 0x03, 'a', 0x00, 'b'};
    cr_assert_eq(decode_with(&w, 0x82, nul_utf8, sizeof(nul_utf8)), PL_ERR_DER_VALUE);
    static const uint8_t otk_big[] = {0x84, 0x03, 0x01, 0x00, 0x00}; /* 65536 */
    cr_assert_eq(decode_with(&w, 0x84, otk_big, sizeof(otk_big)), PL_ERR_DER_VALUE);
    static const uint8_t otk_max[] = {0x84, 0x03, 0x00, 0xFF, 0xFF}; /* 65535 */
    cr_assert_eq(decode_with(&w, 0x84, otk_max, sizeof(otk_max)), PL_OK);
    static const uint8_t otk_neg[] = {0x84, 0x01, 0xFF};
    cr_assert_eq(decode_with(&w, 0x84, otk_neg, sizeof(otk_neg)), PL_ERR_DER_VALUE);
    static const uint8_t otk_nonmin[] = {0x84, 0x02, 0x00, 0x01};
    cr_assert_eq(decode_with(&w, 0x84, otk_nonmin, sizeof(otk_nonmin)), PL_ERR_DER_NONMINIMAL);
    static const uint8_t notafter_neg[] = {0x88, 0x01, 0x80};
    cr_assert_eq(decode_with(&w, 0x88, notafter_neg, sizeof(notafter_neg)), PL_ERR_DER_VALUE);
    static const uint8_t seq_big[] = {0x89, 0x09, 0x01, 0, 0, 0, 0, 0, 0, 0, 0}; /* 2^64 */
    cr_assert_eq(decode_with(&w, 0x89, seq_big, sizeof(seq_big)), PL_ERR_OVERFLOW);
    static const uint8_t version2[] = {0x80, 0x01, 0x02};
    cr_assert_eq(decode_with(&w, 0x80, version2, sizeof(version2)), PL_ERR_UNSUPPORTED);
    static const uint8_t curve0[] = {0x87, 0x01, 0x00};
    cr_assert_eq(decode_with(&w, 0x87, curve0, sizeof(curve0)), PL_ERR_UNSUPPORTED);
    static const uint8_t curve3[] = {0x87, 0x01, 0x03};
    cr_assert_eq(decode_with(&w, 0x87, curve3, sizeof(curve3)), PL_ERR_UNSUPPORTED);
    static const uint8_t curve2[] = {0x87, 0x01, 0x02}; /* other valid curve: fine */
    cr_assert_eq(decode_with(&w, 0x87, curve2, sizeof(curve2)), PL_OK);
    /* transactionId: wrong size, and != the ISCR's. */
    static const uint8_t tid0[] = {0x86, 0x00};
    cr_assert_eq(decode_with(&w, 0x86, tid0, sizeof(tid0)), PL_ERR_DER_VALUE);
    uint8_t tid17[19] = {0x86, 17};
    cr_assert_eq(decode_with(&w, 0x86, tid17, sizeof(tid17)), PL_ERR_DER_VALUE);
    uint8_t tid_other[18] = {0x86, 16};
    memcpy(tid_other + 2, TID, 16);
    tid_other[17] ^= 1;
    cr_assert_eq(decode_with(&w, 0x86, tid_other, sizeof(tid_other)), PL_ERR_MALFORMED);
    uint8_t tid_short[17] = {0x86, 15}; /* a prefix of the ISCR tid is not equal */
    memcpy(tid_short + 2, TID, 15);
    cr_assert_eq(decode_with(&w, 0x86, tid_short, sizeof(tid_short)), PL_ERR_MALFORMED);
    /* A primitive where a constructed value is expected and vice versa. */
    static const uint8_t eid_constructed[] = {0xA3, 0x00};
    cr_assert_eq(decode_with(&w, 0x83, eid_constructed, sizeof(eid_constructed)), PL_ERR_DER_TAG);
    pl_wr_free(&w);
    fix_free(&f);
}

Test(ifpp_envelope, structure_rejected)
{
    struct fix f;
    struct pl_wr w;
    struct pl_ifpp_pkg d;
    fix_init(&f, PL_CURVE_P256);
    seal(&f, &w);
    /* Missing fields: the last (BPP) -> truncated; a middle one -> wrong tag. */
    cr_assert_eq(decode_with(&w, 0xBF36, NULL, 0), PL_ERR_TRUNCATED);
    cr_assert_eq(decode_with(&w, 0x83, NULL, 0), PL_ERR_DER_TAG);
    cr_assert_eq(decode_with(&w, 0xAA, NULL, 0), PL_ERR_DER_TAG);
    /* An unknown extra field after the BPP. */
    static const uint8_t extra[] = {0x8B, 0x01, 0x00};
    cr_assert_eq(decode_with(&w, 0, extra, sizeof(extra)), PL_ERR_DER_TRAILING);
    /* Non-minimal length inside the signed part. */
    uint8_t nonmin[19] = {0x81, 0x81, 0x10};
    cr_assert_eq(decode_with(&w, 0x81, nonmin, sizeof(nonmin)), PL_ERR_DER_NONMINIMAL);
    /* The BPP slot holding something else. */
    static const uint8_t not_bpp[] = {0xBF, 0x37, 0x00};
    cr_assert_eq(decode_with(&w, 0xBF36, not_bpp, sizeof(not_bpp)), PL_ERR_DER_TAG);
    static const uint8_t bpp_no_iscr[] = {0xBF, 0x36, 0x02, 0xA0, 0x00};
    cr_assert_eq(decode_with(&w, 0xBF36, bpp_no_iscr, sizeof(bpp_no_iscr)), PL_ERR_DER_TAG);
    static const uint8_t bpp_bad_inner[] = {0xBF, 0x36, 0x03, 0x04, 0x81, 0x00};
    cr_assert_eq(decode_with(&w, 0xBF36, bpp_bad_inner, sizeof(bpp_bad_inner)),
                 PL_ERR_DER_NONMINIMAL);

    /* Outer level. */
    cr_assert_eq(pl_ifpp_pkg_decode(NULL, 0, &d), PL_ERR_TRUNCATED);
    cr_assert_eq(pl_ifpp_pkg_decode(NULL, 1, &d), PL_ERR_INVAL);
    cr_assert_eq(pl_ifpp_pkg_decode(w.buf, w.len, NULL), PL_ERR_INVAL);
    uint8_t *buf = malloc(w.len + 1);
    memcpy(buf, w.buf, w.len);
    buf[w.len] = 0x00;
    cr_assert_eq(pl_ifpp_pkg_decode(buf, w.len + 1, &d), PL_ERR_DER_TRAILING);
    buf[1] = 0x71; /* FF71: the ES10f header, not an envelope */
    cr_assert_eq(pl_ifpp_pkg_decode(buf, w.len, &d), PL_ERR_DER_TAG);
    free(buf);
    /* Every truncation is rejected, never accepted. */
    for (size_t n = 0; n < w.len; n++) {
        int rc = pl_ifpp_pkg_decode(w.buf, n, &d);
        cr_assert(rc == PL_ERR_TRUNCATED || rc == PL_ERR_DER_LENGTH, "prefix %zu: %d", n, rc);
    }
    pl_wr_free(&w);
    fix_free(&f);
}

Test(ifpp_envelope, signature_field_rejected)
{
    struct fix f;
    struct pl_wr w, x;
    struct pl_ifpp_pkg d;
    fix_init(&f, PL_CURVE_P256);
    seal(&f, &w);
    cr_assert_eq(pl_ifpp_pkg_decode(w.buf, w.len, &d), PL_OK);
    uint8_t sig[65] = {0};
    for (int variant = 0; variant < 3; variant++) {
        pl_wr_init_dyn(&x, 2 * PL_IFPP_PKG_MAX);
        size_t m = pl_der_begin(&x, 0xFF70);
        pl_wr_bytes(&x, d.signed_raw, d.signed_raw_len);
        if (variant == 0)
            pl_der_put_tlv(&x, 0x5F37, sig, 63);
        else if (variant == 1)
            pl_der_put_tlv(&x, 0x5F37, sig, 65);
        else {
            pl_der_put_tlv(&x, 0x5F37, sig, 64);
            pl_der_put_null(&x, 0x05);
        }
        cr_assert_eq(pl_der_end(&x, m), PL_OK);
        int want = variant == 2 ? PL_ERR_DER_TRAILING : PL_ERR_DER_VALUE;
        struct pl_ifpp_pkg m2;
        cr_assert_eq(pl_ifpp_pkg_decode(x.buf, x.len, &m2), want, "variant %d", variant);
        pl_wr_free(&x);
    }
    /* No signature at all. */
    pl_wr_init_dyn(&x, 2 * PL_IFPP_PKG_MAX);
    cr_assert_eq(pl_ifpp_pkg_decode(w.buf, w.len, &d), PL_OK);
    size_t m = pl_der_begin(&x, 0xFF70);
    pl_wr_bytes(&x, d.signed_raw, d.signed_raw_len);
    cr_assert_eq(pl_der_end(&x, m), PL_OK);
    cr_assert_eq(pl_ifpp_pkg_decode(x.buf, x.len, &d), PL_ERR_TRUNCATED);
    pl_wr_free(&x);
    pl_wr_free(&w);
    fix_free(&f);
}

static void put_chain(struct pl_wr *w, const uint8_t *cert, size_t len, size_t n)
{
    size_t m = pl_der_begin(w, 0xAA);
    for (size_t i = 0; i < n; i++)
        pl_wr_bytes(w, cert, len);
    pl_der_end(w, m);
}

Test(ifpp_envelope, chain_rejected)
{
    struct fix f;
    struct pl_wr w, c;
    fix_init(&f, PL_CURVE_P256);
    seal(&f, &w);
    /* 5 certificates is the cap, 6 is over it, 0 is under SIZE(1..). */
    for (size_t n = 0; n <= 6; n++) {
        pl_wr_init_dyn(&c, 65536);
        put_chain(&c, f.cert_dp, f.cert_dp_len, n);
        int want = n == 0 ? PL_ERR_DER_VALUE : n > PL_IFPP_CHAIN_MAX ? PL_ERR_OVERFLOW : PL_OK;
        cr_assert_eq(decode_with(&w, 0xAA, c.buf, c.len), want, "n=%zu", n);
        pl_wr_free(&c);
    }
    /* An element that is not a SEQUENCE. */
    static const uint8_t not_seq[] = {0xAA, 0x02, 0x04, 0x00};
    cr_assert_eq(decode_with(&w, 0xAA, not_seq, sizeof(not_seq)), PL_ERR_DER_TAG);
    /* A certificate whose inside is not strict DER (a BOOLEAN 0x01). */
    static const uint8_t bad_inner[] = {0xAA, 0x05, 0x30, 0x03, 0x01, 0x01, 0x01};
    cr_assert_eq(decode_with(&w, 0xAA, bad_inner, sizeof(bad_inner)), PL_ERR_DER_VALUE);
    /* A certificate over PL_IFPP_CERT_MAX. */
    pl_wr_init_dyn(&c, 65536);
    size_t m = pl_der_begin(&c, 0xAA);
    size_t s = pl_der_begin(&c, 0x30);
    uint8_t *z = calloc(1, PL_IFPP_CERT_MAX);
    pl_der_put_tlv(&c, 0x04, z, PL_IFPP_CERT_MAX);
    pl_der_end(&c, s);
    cr_assert_eq(pl_der_end(&c, m), PL_OK);
    cr_assert_eq(decode_with(&w, 0xAA, c.buf, c.len), PL_ERR_OVERFLOW);
    free(z);
    pl_wr_free(&c);
    /* The chain as a primitive. */
    static const uint8_t prim[] = {0x8A, 0x00};
    cr_assert_eq(decode_with(&w, 0xAA, prim, sizeof(prim)), PL_ERR_DER_TAG);
    pl_wr_free(&w);
    fix_free(&f);
}

Test(ifpp_envelope, oversized_rejected)
{
    struct fix f;
    struct pl_wr w, big;
    struct pl_ifpp_pkg d;
    fix_init(&f, PL_CURVE_P256);
    seal(&f, &w);
    /* Whole input over the cap. */
    uint8_t *huge = calloc(1, PL_IFPP_PKG_MAX + 1);
    memcpy(huge, w.buf, w.len);
    cr_assert_eq(pl_ifpp_pkg_decode(huge, PL_IFPP_PKG_MAX + 1, &d), PL_ERR_DER_TOOBIG);
    /* An outer length over the cap (header only). */
    static const uint8_t hdr[] = {0xFF, 0x70, 0x83, 0x7F, 0xFF, 0xFF};
    cr_assert_eq(pl_ifpp_pkg_decode(hdr, sizeof(hdr), &d), PL_ERR_DER_TOOBIG);
    free(huge);
    /* A BPP over PL_IFPP_BPP_MAX. */
    pl_wr_init_dyn(&big, PL_IFPP_BPP_MAX + 1024);
    size_t m = pl_der_begin(&big, 0xBF36);
    uint8_t *z = calloc(1, PL_IFPP_BPP_MAX);
    pl_der_put_tlv(&big, 0x04, z, PL_IFPP_BPP_MAX);
    cr_assert_eq(pl_der_end(&big, m), PL_OK);
    cr_assert_eq(decode_with(&w, 0xBF36, big.buf, big.len), PL_ERR_OVERFLOW);
    free(z);
    pl_wr_free(&big);
    pl_wr_free(&w);
    fix_free(&f);
}

/* ---- encoder input checks ---- */

static int try_encode(struct fix *f)
{
    struct pl_wr w;
    struct pl_rng rng = PL_RNG_SYSTEM;
    pl_wr_init_dyn(&w, PL_IFPP_PKG_MAX);
    int rc = pl_ifpp_pkg_encode_sign(&f->pkg, f->km, &rng, &w);
    int st = pl_wr_status(&w);
    pl_wr_free(&w);
    cr_assert_eq(rc, st, "the error is sticky in the writer");
    return rc;
}

Test(ifpp_envelope, encoder_rejects_bad_fields)
{
    struct fix f;
    fix_init(&f, PL_CURVE_P256);
    struct pl_ifpp_pkg keep = f.pkg;
    cr_assert_eq(try_encode(&f), PL_OK);

    f.pkg.batch_id[0] = '\0';
    cr_assert_eq(try_encode(&f), PL_ERR_INVAL);
    f.pkg = keep;
    memset(f.pkg.batch_id, 'x', sizeof(f.pkg.batch_id)); /* no NUL: 65 bytes */
    cr_assert_eq(try_encode(&f), PL_ERR_INVAL);
    f.pkg = keep;
    static const char bad[] = "bad \xFF utf8";
    memcpy(f.pkg.batch_id, bad, sizeof(bad));
    cr_assert_eq(try_encode(&f), PL_ERR_INVAL);
    f.pkg = keep;
    f.pkg.tid_len = 0;
    cr_assert_eq(try_encode(&f), PL_ERR_INVAL);
    f.pkg = keep;
    f.pkg.tid_len = 17;
    cr_assert_eq(try_encode(&f), PL_ERR_INVAL);
    f.pkg = keep;
    f.pkg.tid_len = 15; /* != the ISCR transactionId */
    cr_assert_eq(try_encode(&f), PL_ERR_INVAL);
    f.pkg = keep;
    f.pkg.curve = PL_CURVE_NONE;
    cr_assert_eq(try_encode(&f), PL_ERR_INVAL);
    f.pkg = keep;
    f.pkg.bpp_len -= 1; /* not one TLV */
    cr_assert_eq(try_encode(&f), PL_ERR_INVAL);
    f.pkg = keep;
    f.pkg.bpp = NULL;
    cr_assert_eq(try_encode(&f), PL_ERR_INVAL);
    f.pkg = keep;
    f.pkg.dpf_chain.n = 0;
    cr_assert_eq(try_encode(&f), PL_ERR_INVAL);
    f.pkg = keep;
    f.pkg.dpf_chain.n = PL_IFPP_CHAIN_MAX + 1;
    cr_assert_eq(try_encode(&f), PL_ERR_INVAL);
    f.pkg = keep;
    f.pkg.dpf_chain.cert[1].len -= 1;
    cr_assert_eq(try_encode(&f), PL_ERR_INVAL);
    f.pkg = keep;
    f.pkg.dpf_chain.cert[0].der = f.bpp.buf; /* a BF36 is not a certificate */
    f.pkg.dpf_chain.cert[0].len = f.bpp.len;
    cr_assert_eq(try_encode(&f), PL_ERR_INVAL);
    f.pkg = keep;

    /* A BPP whose ISCR has another transactionId. */
    struct pl_wr other;
    pl_wr_init_dyn(&other, 4096);
    uint8_t tid2[16];
    memcpy(tid2, TID, 16);
    tid2[0] ^= 0x80;
    fake_bpp(&other, tid2, sizeof(tid2));
    f.pkg.bpp = other.buf;
    f.pkg.bpp_len = other.len;
    cr_assert_eq(try_encode(&f), PL_ERR_INVAL);
    f.pkg.tid = tid2; /* consistent again */
    cr_assert_eq(try_encode(&f), PL_OK);
    pl_wr_free(&other);
    f.pkg = keep;

    /* No key, NULL package. */
    struct pl_wr w;
    struct pl_rng rng = PL_RNG_SYSTEM;
    pl_wr_init_dyn(&w, PL_IFPP_PKG_MAX);
    cr_assert_eq(pl_ifpp_pkg_encode_sign(&f.pkg, NULL, &rng, &w), PL_ERR_INVAL);
    pl_wr_free(&w);
    pl_wr_init_dyn(&w, PL_IFPP_PKG_MAX);
    cr_assert_eq(pl_ifpp_pkg_encode(NULL, &w), PL_ERR_INVAL);
    pl_wr_free(&w);
    /* A fixed writer too small for the package. */
    uint8_t small[256];
    pl_wr_init_fixed(&w, small, sizeof(small));
    cr_assert_eq(pl_ifpp_pkg_encode_sign(&f.pkg, f.km, &rng, &w), PL_ERR_OVERFLOW);
    fix_free(&f);
}

/* ---- station checks ---- */

Test(ifpp_envelope, check_target)
{
    struct fix f;
    struct pl_wr w;
    struct pl_ifpp_pkg d;
    fix_init(&f, PL_CURVE_P256);
    seal(&f, &w);
    cr_assert_eq(pl_ifpp_pkg_decode(w.buf, w.len, &d), PL_OK);
    cr_assert_eq(pl_ifpp_pkg_check_target(&d, EID, 0x0102, f.otpk), PL_OK);
    uint8_t eid2[16];
    memcpy(eid2, EID, 16);
    eid2[15] ^= 1;
    cr_assert_eq(pl_ifpp_pkg_check_target(&d, eid2, 0x0102, f.otpk), PL_ERR_DENIED);
    cr_assert_eq(pl_ifpp_pkg_check_target(&d, EID, 0x0103, f.otpk), PL_ERR_DENIED);
    uint8_t pk2[PL_EC_PUB_LEN];
    memcpy(pk2, f.otpk, sizeof(pk2));
    pk2[64] ^= 1;
    cr_assert_eq(pl_ifpp_pkg_check_target(&d, EID, 0x0102, pk2), PL_ERR_DENIED);
    cr_assert_eq(pl_ifpp_pkg_check_target(NULL, EID, 0x0102, f.otpk), PL_ERR_INVAL);
    pl_wr_free(&w);
    fix_free(&f);
}

Test(ifpp_envelope, check_time)
{
    struct pl_ifpp_pkg p;
    memset(&p, 0, sizeof(p));
    p.not_after = 1000;
    cr_assert_eq(pl_ifpp_pkg_check_time(&p, 0), PL_OK);
    cr_assert_eq(pl_ifpp_pkg_check_time(&p, 1000), PL_OK);
    cr_assert_eq(pl_ifpp_pkg_check_time(&p, 1001), PL_ERR_EXPIRED);
    p.not_after = UINT64_MAX;
    cr_assert_eq(pl_ifpp_pkg_check_time(&p, UINT64_MAX), PL_OK);
    cr_assert_eq(pl_ifpp_pkg_check_time(NULL, 0), PL_ERR_INVAL);
}

/* ---- fuzz seeds ---- */

static void write_seed(const char *name, const uint8_t *p, size_t len)
{
    char rel[256], path[512];
    snprintf(rel, sizeof(rel), "tests/fuzz/corpus/ifpp_envelope/%s", name);
    FILE *fp = fopen(pl_test_src(path, sizeof(path), rel), "wb");
    cr_assert_not_null(fp, "cannot write %s", path);
    cr_assert_eq(fwrite(p, 1, len, fp), len);
    fclose(fp);
}

Test(ifpp_envelope, fuzz_seeds)
{
    if (getenv("PL_REGEN_CORPUS")) {
        struct fix f;
        struct pl_wr w;
        for (int c = 1; c <= 2; c++) {
            fix_init(&f, (enum pl_curve)c);
            f.pkg.dpf_chain.n = 1;
            seal(&f, &w);
            write_seed(c == 1 ? "pkg_p256_ok.der" : "pkg_bp256_ok.der", w.buf, w.len);
            pl_wr_free(&w);
            fix_free(&f);
        }
        /* One with a real bound TS.48 BPP. */
        struct pl_rng rng = PL_RNG_SYSTEM;
        struct pl_eckey *dp = NULL;
        struct pl_wr bpp;
        static const uint8_t host[8] = {'H', 'O', 'S', 'T', 'I', 'D', '0', '1'};
        size_t upp_len;
        fix_init(&f, PL_CURVE_P256);
        f.pkg.dpf_chain.n = 1;
        uint8_t *upp = read_src("tests/data/ts48/TS48V1-A-UNIQUE.der", &upp_len);
        cr_assert_eq(pl_eckey_generate(PL_CURVE_P256, &rng, &dp), PL_OK);
        struct pl_bind_params bp = {
            .curve = PL_CURVE_P256,
            .dp_key = dp,
            .euicc_otpk = f.otpk,
            .eid = EID,
            .host_id = host,
            .host_id_len = sizeof(host),
            .tid = TID,
            .tid_len = sizeof(TID),
            .upp = upp,
            .upp_len = upp_len,
            .spn = "provline",
            .profile_name = "TS.48",
            .profile_class = 2,
            .rng = &rng,
        };
        pl_wr_init_dyn(&bpp, PL_BIND_BPP_MAX);
        cr_assert_eq(pl_bpp_bind(&bp, &bpp), PL_OK);
        f.pkg.bpp = bpp.buf;
        f.pkg.bpp_len = bpp.len;
        seal(&f, &w);
        write_seed("pkg_ts48_bpp_ok.der", w.buf, w.len);
        pl_wr_free(&w);
        pl_wr_free(&bpp);
        pl_eckey_free(dp);
        free(upp);
        fix_free(&f);
    }
    /* Every committed *_ok seed decodes. */
    char path[512];
    DIR *dir = opendir(pl_test_src(path, sizeof(path), "tests/fuzz/corpus/ifpp_envelope"));
    cr_assert_not_null(dir);
    struct dirent *e;
    int ok = 0;
    while ((e = readdir(dir)) != NULL) {
        if (!strstr(e->d_name, "_ok"))
            continue;
        char rel[512];
        size_t len;
        snprintf(rel, sizeof(rel), "tests/fuzz/corpus/ifpp_envelope/%s", e->d_name);
        uint8_t *b = read_src(rel, &len);
        struct pl_ifpp_pkg d;
        cr_assert_eq(pl_ifpp_pkg_decode(b, len, &d), PL_OK, "%s", e->d_name);
        free(b);
        ok++;
    }
    closedir(dir);
    cr_assert_geq(ok, 3);
}
