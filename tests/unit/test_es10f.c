/* Unit tests: provline's ES10f commands (protocol/es10f.h, docs/ifpp-es10f.md §3-§7):
 * OTK signatures ("IFPP-OTK" || EID || otkId || otPK), GetIfppInfo, the LoadIfppPackage
 * header and its response, DeleteRemainingOtks token / receipt with counter anti-replay.
 * Round trips with real keys on P-256 and brainpoolP256r1, golden bytes for the signed
 * parts, a bit flip in every byte of each signed part, wrong keys, and strict rejection
 * of truncated / oversized / wrong-tag / trailing / out-of-range inputs.
 * Also (re)writes the fuzz seeds of tests/fuzz/corpus/es10f/ when PL_REGEN_CORPUS is set,
 * and checks the committed seeds decode. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pl_test.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/der.h"
#include "provline/protocol/es10f.h"
#include "provline/protocol/hex.h"
#include "provline/protocol/ifpp_envelope.h"

static const uint8_t EID[16] = {0x89, 0x04, 0x90, 0x32, 0x12, 0x34, 0x51, 0x23,
                                0x45, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x35};
static const uint8_t TID[16] = {0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8,
                                0xA9, 0xAA, 0xAB, 0xAC, 0xAD, 0xAE, 0xAF, 0xB0};

static uint8_t *read_src(const char *rel, size_t *len)
{
    char path[512];
    uint8_t *b = pl_test_read_file(pl_test_src(path, sizeof(path), rel), len);
    cr_assert_not_null(b, "cannot read %s", path);
    return b;
}

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    cr_assert_eq(pl_hex_decode_loose(hex, out, cap, &n), PL_OK);
    return n;
}

static struct pl_eckey *genkey(enum pl_curve c)
{
    struct pl_rng rng = PL_RNG_SYSTEM;
    struct pl_eckey *k = NULL;
    cr_assert_eq(pl_eckey_generate(c, &rng, &k), PL_OK);
    return k;
}

/* The SGP.26 test eUICC (variant O): SK.EUICC.SIG, CERT.EUICC, CERT.EUM. */
struct euicc {
    struct pl_eckey *sk;
    uint8_t *cert_euicc, *cert_eum;
    size_t cert_euicc_len, cert_eum_len;
};

static void euicc_load(struct euicc *e)
{
    size_t len;
    uint8_t *pem = read_src("tests/data/sgp26/variant-o/SK_EUICC_SIG_NIST.pem", &len);
    cr_assert_eq(pl_eckey_parse(pem, len, &e->sk), PL_OK);
    free(pem);
    e->cert_euicc =
        read_src("tests/data/sgp26/variant-o/CERT_EUICC_SIG_NIST.der", &e->cert_euicc_len);
    e->cert_eum = read_src("tests/data/sgp26/variant-o/CERT_EUM_SIG_NIST.der", &e->cert_eum_len);
}

static void euicc_free(struct euicc *e)
{
    pl_eckey_free(e->sk);
    free(e->cert_euicc);
    free(e->cert_eum);
}

static void chain1(struct pl_ifpp_chain *c, const uint8_t *der, size_t len)
{
    memset(c, 0, sizeof(*c));
    c->n = 1;
    c->cert[0].der = der;
    c->cert[0].len = len;
}

/* Flips one bit in each `stride`-th byte of [from, to) of an encoding; `check` decodes
 * and verifies the copy and returns PL_OK only if it was (wrongly) accepted.
 * Returns how many flips decoded and then failed the signature. */
typedef int (*accept_fn)(const uint8_t *p, size_t len, const void *ctx, bool *decoded);

static size_t flip_all(const uint8_t *enc, size_t len, size_t from, size_t to, size_t stride,
                       accept_fn check, const void *ctx)
{
    uint8_t *buf = malloc(len);
    size_t sig_fail = 0, tried = 0;
    cr_assert_not_null(buf);
    for (size_t i = from; i < to; i += stride) {
        bool decoded = false;
        memcpy(buf, enc, len);
        buf[i] ^= (uint8_t)(1u << (i % 8u));
        cr_assert_neq(check(buf, len, ctx, &decoded), PL_OK, "flip at %zu accepted", i);
        sig_fail += decoded;
        tried++;
    }
    free(buf);
    cr_assert_gt(sig_fail, tried / 2, "%zu of %zu flips reached the signature", sig_fail, tried);
    return sig_fail;
}

/* =============================================================== one-time keys == */

Test(es10f, otk_signed_data_layout)
{
    uint8_t pk[PL_EC_PUB_LEN], msg[PL_IFPP_OTK_MSG_LEN];
    for (size_t i = 0; i < sizeof(pk); i++)
        pk[i] = (uint8_t)i;
    pl_ifpp_otk_signed_data(EID, 0x1234, pk, msg);
    cr_assert_eq(PL_IFPP_OTK_MSG_LEN, 91);
    cr_assert_arr_eq(msg, "IFPP-OTK", 8);
    cr_assert_arr_eq(msg + 8, EID, 16);
    cr_assert_eq(msg[24], 0x12);
    cr_assert_eq(msg[25], 0x34);
    cr_assert_arr_eq(msg + 26, pk, 65);
}

static void otk_sign_verify(enum pl_curve c)
{
    struct pl_rng rng = PL_RNG_SYSTEM;
    struct pl_eckey *sk = genkey(c), *other = genkey(c), *otk = genkey(c);
    struct pl_ifpp_otk o = {.otk_id = 7};
    cr_assert_eq(pl_eckey_public(otk, o.otpk), PL_OK);
    cr_assert_eq(pl_ifpp_otk_sign(sk, EID, &o, &rng), PL_OK);
    cr_assert_eq(pl_ifpp_otk_verify(sk, EID, &o), PL_OK);
    /* The signature is exactly ECDSA over pl_ifpp_otk_signed_data(). */
    uint8_t msg[PL_IFPP_OTK_MSG_LEN];
    pl_ifpp_otk_signed_data(EID, 7, o.otpk, msg);
    cr_assert_eq(pl_ecdsa_verify(sk, msg, sizeof(msg), o.sig), PL_OK);

    cr_assert_eq(pl_ifpp_otk_verify(other, EID, &o), PL_ERR_BAD_SIGNATURE);
    uint8_t eid2[16];
    memcpy(eid2, EID, 16);
    eid2[0] ^= 0x01;
    cr_assert_eq(pl_ifpp_otk_verify(sk, eid2, &o), PL_ERR_BAD_SIGNATURE, "bound to the EID");
    struct pl_ifpp_otk m = o;
    m.otk_id = 8;
    cr_assert_eq(pl_ifpp_otk_verify(sk, EID, &m), PL_ERR_BAD_SIGNATURE, "bound to the otkId");
    for (size_t i = 0; i < PL_EC_PUB_LEN; i++) {
        m = o;
        m.otpk[i] ^= (uint8_t)(1u << (i % 8u));
        cr_assert_eq(pl_ifpp_otk_verify(sk, EID, &m), PL_ERR_BAD_SIGNATURE, "otPK byte %zu", i);
    }
    for (size_t i = 0; i < PL_ECDSA_SIG_LEN; i++) {
        m = o;
        m.sig[i] ^= 0x80;
        cr_assert_neq(pl_ifpp_otk_verify(sk, EID, &m), PL_OK, "sig byte %zu", i);
    }
    cr_assert_eq(pl_ifpp_otk_verify(NULL, EID, &o), PL_ERR_INVAL);
    cr_assert_eq(pl_ifpp_otk_sign(NULL, EID, &o, &rng), PL_ERR_INVAL);
    pl_eckey_free(sk);
    pl_eckey_free(other);
    pl_eckey_free(otk);
}

Test(es10f, otk_sign_verify_p256)
{
    otk_sign_verify(PL_CURVE_P256);
}

Test(es10f, otk_sign_verify_brainpool)
{
    otk_sign_verify(PL_CURVE_BP256R1);
}

/* ================================================================= GetIfppInfo == */

Test(es10f, get_info_request)
{
    struct pl_wr w;
    pl_wr_init_dyn(&w, 64);
    cr_assert_eq(pl_es10f_get_info_req_encode(&w), PL_OK);
    cr_assert_eq(w.len, 3);
    cr_assert_arr_eq(w.buf, ((const uint8_t[]){0xFF, 0x72, 0x00}), 3);
    cr_assert_eq(pl_es10f_get_info_req_decode(w.buf, w.len), PL_OK);
    pl_wr_free(&w);
    static const uint8_t content[] = {0xFF, 0x72, 0x02, 0x80, 0x00};
    cr_assert_eq(pl_es10f_get_info_req_decode(content, sizeof(content)), PL_ERR_DER_TRAILING);
    static const uint8_t trailing[] = {0xFF, 0x72, 0x00, 0x00};
    cr_assert_eq(pl_es10f_get_info_req_decode(trailing, sizeof(trailing)), PL_ERR_DER_TRAILING);
    static const uint8_t tag[] = {0xFF, 0x73, 0x00};
    cr_assert_eq(pl_es10f_get_info_req_decode(tag, sizeof(tag)), PL_ERR_DER_TAG);
    static const uint8_t prim[] = {0xDF, 0x72, 0x00}; /* primitive form of the same number */
    cr_assert_eq(pl_es10f_get_info_req_decode(prim, sizeof(prim)), PL_ERR_DER_TAG);
    static const uint8_t trunc[] = {0xFF, 0x72};
    cr_assert_eq(pl_es10f_get_info_req_decode(trunc, sizeof(trunc)), PL_ERR_TRUNCATED);
    cr_assert_eq(pl_es10f_get_info_req_decode(NULL, 0), PL_ERR_TRUNCATED);
    static const uint8_t big[] = {0xFF, 0x72, 0x81, 0x80};
    cr_assert_eq(pl_es10f_get_info_req_decode(big, sizeof(big)), PL_ERR_DER_TOOBIG);
}

/* An info with n signed OTKs (ids 3, 5, 7, ...). */
static void make_info(struct pl_es10f_info *in, const struct euicc *e, size_t n,
                      struct pl_eckey **otks)
{
    struct pl_rng rng = PL_RNG_SYSTEM;
    memset(in, 0, sizeof(*in));
    memcpy(in->eid, EID, 16);
    in->factory_mode = true;
    in->cert_euicc.der = e->cert_euicc;
    in->cert_euicc.len = e->cert_euicc_len;
    in->cert_eum.der = e->cert_eum;
    in->cert_eum.len = e->cert_eum_len;
    in->n_otk = n;
    for (size_t i = 0; i < n; i++) {
        in->otk[i].otk_id = (uint16_t)(3 + 2 * i);
        if (otks) {
            otks[i] = genkey(PL_CURVE_P256);
            cr_assert_eq(pl_eckey_public(otks[i], in->otk[i].otpk), PL_OK);
        } else {
            memset(in->otk[i].otpk, (int)i, PL_EC_PUB_LEN);
            in->otk[i].otpk[0] = 0x04;
        }
        cr_assert_eq(pl_ifpp_otk_sign(e->sk, EID, &in->otk[i], &rng), PL_OK);
    }
}

Test(es10f, get_info_response_roundtrip)
{
    struct euicc e;
    struct pl_es10f_info in, out;
    struct pl_eckey *otks[3];
    struct pl_wr w, w2;
    euicc_load(&e);
    make_info(&in, &e, 3, otks);
    pl_wr_init_dyn(&w, PL_ES10F_GET_INFO_RSP_MAX);
    cr_assert_eq(pl_es10f_get_info_rsp_encode(&in, &w), PL_OK);
    cr_assert_eq(w.buf[0], 0xFF);
    cr_assert_eq(w.buf[1], 0x73);
    cr_assert_eq(pl_es10f_get_info_rsp_decode(w.buf, w.len, &out), PL_OK);
    cr_assert_arr_eq(out.eid, EID, 16);
    cr_assert(out.factory_mode);
    cr_assert_eq(out.cert_euicc.len, e.cert_euicc_len);
    cr_assert_arr_eq(out.cert_euicc.der, e.cert_euicc, e.cert_euicc_len);
    cr_assert_arr_eq(out.cert_eum.der, e.cert_eum, e.cert_eum_len);
    cr_assert(out.cert_eum.der > w.buf && out.cert_eum.der < w.buf + w.len, "borrowed");
    cr_assert_eq(out.n_otk, 3);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(out.otk[i].otk_id, in.otk[i].otk_id);
        cr_assert_arr_eq(out.otk[i].otpk, in.otk[i].otpk, PL_EC_PUB_LEN);
        /* What the Key Maker does (ARCHITECTURE.md §4 step 2). */
        cr_assert_eq(pl_ifpp_otk_verify(e.sk, out.eid, &out.otk[i]), PL_OK);
    }
    cr_assert_eq(pl_es10f_info_find_otk(&out, 5), &out.otk[1]);
    cr_assert_null(pl_es10f_info_find_otk(&out, 4));
    cr_assert_null(pl_es10f_info_find_otk(NULL, 4));
    /* Canonical re-encoding. */
    pl_wr_init_dyn(&w2, PL_ES10F_GET_INFO_RSP_MAX);
    cr_assert_eq(pl_es10f_get_info_rsp_encode(&out, &w2), PL_OK);
    cr_assert_eq(w2.len, w.len);
    cr_assert_arr_eq(w2.buf, w.buf, w.len);
    /* Every truncation rejected. */
    for (size_t n = 0; n < w.len; n++) {
        int rc = pl_es10f_get_info_rsp_decode(w.buf, n, &out);
        cr_assert(rc == PL_ERR_TRUNCATED || rc == PL_ERR_DER_LENGTH, "prefix %zu: %d", n, rc);
    }
    /* Trailing byte, wrong outer tag. */
    uint8_t *buf = malloc(w.len + 1);
    memcpy(buf, w.buf, w.len);
    buf[w.len] = 0;
    cr_assert_eq(pl_es10f_get_info_rsp_decode(buf, w.len + 1, &out), PL_ERR_DER_TRAILING);
    buf[1] = 0x72;
    cr_assert_eq(pl_es10f_get_info_rsp_decode(buf, w.len, &out), PL_ERR_DER_TAG);
    free(buf);
    /* No OTK (a list of zero is well-formed). */
    in.n_otk = 0;
    pl_wr_reset(&w2);
    cr_assert_eq(pl_es10f_get_info_rsp_encode(&in, &w2), PL_OK);
    cr_assert_eq(pl_es10f_get_info_rsp_decode(w2.buf, w2.len, &out), PL_OK);
    cr_assert_eq(out.n_otk, 0);
    for (size_t i = 0; i < 3; i++)
        pl_eckey_free(otks[i]);
    pl_wr_free(&w);
    pl_wr_free(&w2);
    euicc_free(&e);
}

Test(es10f, get_info_response_max_otks)
{
    struct euicc e;
    struct pl_es10f_info *in = malloc(sizeof(*in)), *out = malloc(sizeof(*out));
    struct pl_wr w;
    euicc_load(&e);
    make_info(in, &e, PL_ES10F_OTK_MAX, NULL);
    pl_wr_init_dyn(&w, PL_ES10F_GET_INFO_RSP_MAX);
    cr_assert_eq(pl_es10f_get_info_rsp_encode(in, &w), PL_OK);
    cr_assert_leq(w.len, PL_ES10F_GET_INFO_RSP_MAX);
    cr_assert_eq(pl_es10f_get_info_rsp_decode(w.buf, w.len, out), PL_OK);
    cr_assert_eq(out->n_otk, PL_ES10F_OTK_MAX);
    cr_assert_eq(pl_ifpp_otk_verify(e.sk, EID, &out->otk[PL_ES10F_OTK_MAX - 1]), PL_OK);
    /* One more than the cap: the encoder refuses, a hand-made list is rejected. */
    in->n_otk = PL_ES10F_OTK_MAX + 1;
    pl_wr_reset(&w);
    cr_assert_eq(pl_es10f_get_info_rsp_encode(in, &w), PL_ERR_INVAL);
    pl_wr_free(&w);
    pl_wr_init_dyn(&w, 2 * PL_ES10F_GET_INFO_RSP_MAX);
    size_t m = pl_der_begin(&w, 0xFF73);
    pl_der_put_tlv(&w, 0x80, EID, 16);
    pl_der_put_bool(&w, 0x81, true);
    pl_der_put_tlv(&w, 0xA2, e.cert_euicc, e.cert_euicc_len);
    pl_der_put_tlv(&w, 0xA3, e.cert_eum, e.cert_eum_len);
    size_t l = pl_der_begin(&w, 0xA4);
    for (unsigned i = 0; i <= PL_ES10F_OTK_MAX; i++) {
        size_t s = pl_der_begin(&w, 0x30);
        pl_der_put_uint(&w, 0x80, i);
        pl_der_put_tlv(&w, 0x81, in->otk[0].otpk, 65);
        pl_der_put_tlv(&w, 0x82, in->otk[0].sig, 64);
        pl_der_end(&w, s);
    }
    pl_der_end(&w, l);
    cr_assert_eq(pl_der_end(&w, m), PL_OK);
    cr_assert_eq(pl_es10f_get_info_rsp_decode(w.buf, w.len, out), PL_ERR_OVERFLOW);
    pl_wr_free(&w);
    free(in);
    free(out);
    euicc_free(&e);
}

/* Builds 'FF73' with one replaced top-level field (tag) or one replaced OTK entry. */
static int info_with(const struct euicc *e, uint32_t tag, const uint8_t *repl, size_t rlen)
{
    struct pl_es10f_info in, out;
    struct pl_wr src, w;
    make_info(&in, e, 2, NULL);
    pl_wr_init_dyn(&src, PL_ES10F_GET_INFO_RSP_MAX);
    cr_assert_eq(pl_es10f_get_info_rsp_encode(&in, &src), PL_OK);
    struct pl_der d, s;
    struct pl_tlv t;
    pl_der_init(&d, src.buf, src.len);
    cr_assert_eq(pl_der_next(&d, &t), PL_OK);
    cr_assert_eq(pl_der_enter(&d, &t, &s), PL_OK);
    pl_wr_init_dyn(&w, 2 * PL_ES10F_GET_INFO_RSP_MAX);
    size_t m = pl_der_begin(&w, 0xFF73);
    while (!pl_der_done(&s)) {
        cr_assert_eq(pl_der_next(&s, &t), PL_OK);
        if (t.tag == tag)
            pl_wr_bytes(&w, repl, rlen);
        else
            pl_wr_bytes(&w, t.raw, t.raw_len);
    }
    if (tag == 0)
        pl_wr_bytes(&w, repl, rlen);
    cr_assert_eq(pl_der_end(&w, m), PL_OK);
    int rc = pl_es10f_get_info_rsp_decode(w.buf, w.len, &out);
    pl_wr_free(&src);
    pl_wr_free(&w);
    return rc;
}

static void otk_entry(struct pl_wr *w, const uint8_t *id, size_t idlen, size_t pklen, size_t siglen)
{
    uint8_t z[80] = {0x04};
    size_t s = pl_der_begin(w, 0x30);
    pl_der_put_tlv(w, 0x80, id, idlen);
    pl_der_put_tlv(w, 0x81, z, pklen);
    pl_der_put_tlv(w, 0x82, z, siglen);
    pl_der_end(w, s);
}

Test(es10f, get_info_response_rejected)
{
    struct euicc e;
    euicc_load(&e);
    static const uint8_t eid15[] = {0x80, 15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    cr_assert_eq(info_with(&e, 0x80, eid15, sizeof(eid15)), PL_ERR_DER_VALUE);
    static const uint8_t bool01[] = {0x81, 0x01, 0x01}; /* BER TRUE, not DER */
    cr_assert_eq(info_with(&e, 0x81, bool01, sizeof(bool01)), PL_ERR_DER_VALUE);
    static const uint8_t bool_false[] = {0x81, 0x01, 0x00};
    cr_assert_eq(info_with(&e, 0x81, bool_false, sizeof(bool_false)), PL_OK);
    static const uint8_t empty_cert[] = {0xA2, 0x00};
    cr_assert_eq(info_with(&e, 0xA2, empty_cert, sizeof(empty_cert)), PL_ERR_TRUNCATED);
    static const uint8_t not_cert[] = {0xA3, 0x02, 0x04, 0x00};
    cr_assert_eq(info_with(&e, 0xA3, not_cert, sizeof(not_cert)), PL_ERR_DER_TAG);
    static const uint8_t two_certs[] = {0xA2, 0x04, 0x30, 0x00, 0x30, 0x00};
    cr_assert_eq(info_with(&e, 0xA2, two_certs, sizeof(two_certs)), PL_ERR_DER_TRAILING);
    static const uint8_t prim_list[] = {0x84, 0x00};
    cr_assert_eq(info_with(&e, 0xA4, prim_list, sizeof(prim_list)), PL_ERR_DER_TAG);
    static const uint8_t extra[] = {0x85, 0x00};
    cr_assert_eq(info_with(&e, 0, extra, sizeof(extra)), PL_ERR_DER_TRAILING);
    cr_assert_eq(info_with(&e, 0xA3, NULL, 0), PL_ERR_DER_TAG, "missing eumCertificate");
    cr_assert_eq(info_with(&e, 0xA4, NULL, 0), PL_ERR_TRUNCATED, "missing otkList");

    /* OTK entries: sizes, range, order. */
    struct {
        uint8_t id[3];
        size_t idlen, pklen, siglen;
        int want;
    } cases[] = {
        {{0x01}, 1, 65, 64, PL_OK},
        {{0x01}, 1, 64, 64, PL_ERR_DER_VALUE},
        {{0x01}, 1, 66, 64, PL_ERR_DER_VALUE},
        {{0x01}, 1, 65, 63, PL_ERR_DER_VALUE},
        {{0x01}, 1, 65, 72, PL_ERR_DER_VALUE},
        {{0x01, 0x00, 0x00}, 3, 65, 64, PL_ERR_DER_VALUE}, /* otkId 65536 */
        {{0xFF}, 1, 65, 64, PL_ERR_DER_VALUE},             /* negative */
        {{0x00, 0x05}, 2, 65, 64, PL_ERR_DER_NONMINIMAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct pl_wr l;
        pl_wr_init_dyn(&l, 1024);
        size_t m = pl_der_begin(&l, 0xA4);
        otk_entry(&l, cases[i].id, cases[i].idlen, cases[i].pklen, cases[i].siglen);
        cr_assert_eq(pl_der_end(&l, m), PL_OK);
        cr_assert_eq(info_with(&e, 0xA4, l.buf, l.len), cases[i].want, "case %zu", i);
        pl_wr_free(&l);
    }
    /* Order: 5 then 3 (unsorted), 5 then 5 (duplicate), 3 then 5 (fine). */
    static const uint8_t ids[][2] = {{5, 3}, {5, 5}, {3, 5}};
    for (size_t i = 0; i < 3; i++) {
        struct pl_wr l;
        pl_wr_init_dyn(&l, 1024);
        size_t m = pl_der_begin(&l, 0xA4);
        otk_entry(&l, &ids[i][0], 1, 65, 64);
        otk_entry(&l, &ids[i][1], 1, 65, 64);
        cr_assert_eq(pl_der_end(&l, m), PL_OK);
        cr_assert_eq(info_with(&e, 0xA4, l.buf, l.len), i == 2 ? PL_OK : PL_ERR_DER_VALUE);
        pl_wr_free(&l);
    }
    /* An entry with an extra field. */
    struct pl_wr l;
    pl_wr_init_dyn(&l, 1024);
    size_t m = pl_der_begin(&l, 0xA4);
    size_t s = pl_der_begin(&l, 0x30);
    uint8_t z[65] = {0x04};
    pl_der_put_uint(&l, 0x80, 1);
    pl_der_put_tlv(&l, 0x81, z, 65);
    pl_der_put_tlv(&l, 0x82, z, 64);
    pl_der_put_null(&l, 0x83);
    pl_der_end(&l, s);
    cr_assert_eq(pl_der_end(&l, m), PL_OK);
    cr_assert_eq(info_with(&e, 0xA4, l.buf, l.len), PL_ERR_DER_TRAILING);
    pl_wr_free(&l);
    euicc_free(&e);
}

Test(es10f, get_info_encoder_rejects)
{
    struct euicc e;
    struct pl_es10f_info in;
    struct pl_wr w;
    euicc_load(&e);
    make_info(&in, &e, 2, NULL);
    in.otk[1].otk_id = in.otk[0].otk_id; /* duplicate */
    pl_wr_init_dyn(&w, PL_ES10F_GET_INFO_RSP_MAX);
    cr_assert_eq(pl_es10f_get_info_rsp_encode(&in, &w), PL_ERR_INVAL);
    cr_assert_eq(pl_wr_status(&w), PL_ERR_INVAL);
    pl_wr_free(&w);
    make_info(&in, &e, 2, NULL);
    in.cert_eum.len -= 1;
    pl_wr_init_dyn(&w, PL_ES10F_GET_INFO_RSP_MAX);
    cr_assert_eq(pl_es10f_get_info_rsp_encode(&in, &w), PL_ERR_INVAL);
    pl_wr_free(&w);
    pl_wr_init_dyn(&w, PL_ES10F_GET_INFO_RSP_MAX);
    cr_assert_eq(pl_es10f_get_info_rsp_encode(NULL, &w), PL_ERR_INVAL);
    pl_wr_free(&w);
    euicc_free(&e);
}

/* ============================================================= LoadIfppPackage == */

Test(es10f, load_request_roundtrip)
{
    struct euicc e;
    struct pl_es10f_load_req in, out;
    struct pl_wr w, w2;
    euicc_load(&e);
    memset(&in, 0, sizeof(in));
    in.otk_id = 300;
    in.tid = TID;
    in.tid_len = sizeof(TID);
    in.dpf_chain.n = 2;
    in.dpf_chain.cert[0].der = e.cert_euicc; /* any certificates will do for the codec */
    in.dpf_chain.cert[0].len = e.cert_euicc_len;
    in.dpf_chain.cert[1].der = e.cert_eum;
    in.dpf_chain.cert[1].len = e.cert_eum_len;
    pl_wr_init_dyn(&w, PL_ES10F_LOAD_REQ_MAX);
    cr_assert_eq(pl_es10f_load_req_encode(&in, &w), PL_OK);
    /* FF71 L { 80 02 012C, 81 10 tid, A2 ... } */
    cr_assert_eq(w.buf[0], 0xFF);
    cr_assert_eq(w.buf[1], 0x71);
    size_t hdr = w.buf[2] < 0x80 ? 3 : 3 + (w.buf[2] & 0x7Fu);
    cr_assert_arr_eq(w.buf + hdr, ((const uint8_t[]){0x80, 0x02, 0x01, 0x2C, 0x81, 0x10}), 6);
    cr_assert_eq(pl_es10f_load_req_decode(w.buf, w.len, &out), PL_OK);
    cr_assert_eq(out.otk_id, 300);
    cr_assert_eq(out.tid_len, 16);
    cr_assert_arr_eq(out.tid, TID, 16);
    cr_assert_eq(out.dpf_chain.n, 2);
    cr_assert_arr_eq(out.dpf_chain.cert[1].der, e.cert_eum, e.cert_eum_len);
    pl_wr_init_dyn(&w2, PL_ES10F_LOAD_REQ_MAX);
    cr_assert_eq(pl_es10f_load_req_encode(&out, &w2), PL_OK);
    cr_assert_eq(w2.len, w.len);
    cr_assert_arr_eq(w2.buf, w.buf, w.len);
    for (size_t n = 0; n < w.len; n++) {
        int rc = pl_es10f_load_req_decode(w.buf, n, &out);
        cr_assert(rc == PL_ERR_TRUNCATED || rc == PL_ERR_DER_LENGTH, "prefix %zu: %d", n, rc);
    }
    uint8_t *buf = malloc(w.len + 1);
    memcpy(buf, w.buf, w.len);
    buf[w.len] = 0x00;
    cr_assert_eq(pl_es10f_load_req_decode(buf, w.len + 1, &out), PL_ERR_DER_TRAILING);
    buf[1] = 0x70;
    cr_assert_eq(pl_es10f_load_req_decode(buf, w.len, &out), PL_ERR_DER_TAG);
    free(buf);

    /* Hand-made headers. */
    uint8_t b[4096];
    size_t n = unhex("FF71 09 8003010000 8100 A200", b, sizeof(b)); /* otkId 65536 */
    cr_assert_eq(pl_es10f_load_req_decode(b, n, &out), PL_ERR_DER_VALUE);
    n = unhex("FF71 07 800101 8100 A200", b, sizeof(b)); /* empty tid */
    cr_assert_eq(pl_es10f_load_req_decode(b, n, &out), PL_ERR_DER_VALUE);
    n = unhex("FF71 18 800101 8111 0102030405060708090A0B0C0D0E0F1011 A200", b, sizeof(b));
    cr_assert_eq(pl_es10f_load_req_decode(b, n, &out), PL_ERR_DER_VALUE); /* 17-byte tid */
    n = unhex("FF71 08 800101 810101 A200", b, sizeof(b));                /* empty chain */
    cr_assert_eq(pl_es10f_load_req_decode(b, n, &out), PL_ERR_DER_VALUE);
    n = unhex("FF71 06 800101 810101", b, sizeof(b)); /* no chain */
    cr_assert_eq(pl_es10f_load_req_decode(b, n, &out), PL_ERR_TRUNCATED);
    n = unhex("FF71 06 810101 800101", b, sizeof(b)); /* fields swapped */
    cr_assert_eq(pl_es10f_load_req_decode(b, n, &out), PL_ERR_DER_TAG);
    n = unhex("FF71 80 800101 810101 A200 0000", b, sizeof(b)); /* indefinite */
    cr_assert_eq(pl_es10f_load_req_decode(b, n, &out), PL_ERR_DER_INDEFINITE);
    n = unhex("FF71 83 010000", b, sizeof(b)); /* length over the command's cap */
    cr_assert_eq(pl_es10f_load_req_decode(b, n, &out), PL_ERR_DER_TOOBIG);

    /* Encoder checks. */
    in.tid_len = 17;
    pl_wr_reset(&w2);
    cr_assert_eq(pl_es10f_load_req_encode(&in, &w2), PL_ERR_INVAL);
    in.tid_len = 16;
    in.dpf_chain.n = 0;
    pl_wr_free(&w2);
    pl_wr_init_dyn(&w2, PL_ES10F_LOAD_REQ_MAX);
    cr_assert_eq(pl_es10f_load_req_encode(&in, &w2), PL_ERR_INVAL);
    pl_wr_free(&w);
    pl_wr_free(&w2);
    euicc_free(&e);
}

Test(es10f, load_request_from_package)
{
    struct pl_ifpp_pkg pkg;
    struct pl_es10f_load_req r;
    memset(&pkg, 0, sizeof(pkg));
    pkg.otk_id = 9;
    pkg.tid = TID;
    pkg.tid_len = 5;
    pkg.dpf_chain.n = 1;
    pkg.dpf_chain.cert[0].der = TID;
    pkg.dpf_chain.cert[0].len = 3;
    pl_es10f_load_req_from_pkg(&pkg, &r);
    cr_assert_eq(r.otk_id, 9);
    cr_assert_eq(r.tid, TID);
    cr_assert_eq(r.tid_len, 5);
    cr_assert_eq(r.dpf_chain.n, 1);
    cr_assert_eq(r.dpf_chain.cert[0].der, TID);
}

Test(es10f, load_response)
{
    struct pl_es10f_load_rsp r;
    struct pl_wr w;
    cr_assert_eq(pl_es10f_load_rsp_decode(NULL, 0, &r), PL_OK);
    cr_assert(!r.has_pir);
    uint8_t b[512];
    size_t n = unhex("BF37 0B BF27 05 8003 010203 5F37 00", b, sizeof(b));
    cr_assert_eq(pl_es10f_load_rsp_decode(b, n, &r), PL_OK);
    cr_assert(r.has_pir);
    cr_assert_eq(r.pir, b);
    cr_assert_eq(r.pir_len, n);
    pl_wr_init_dyn(&w, 1024);
    cr_assert_eq(pl_es10f_load_rsp_encode(&r, &w), PL_OK);
    cr_assert_eq(w.len, n);
    cr_assert_arr_eq(w.buf, b, n);
    pl_wr_reset(&w);
    struct pl_es10f_load_rsp none = {.has_pir = false};
    cr_assert_eq(pl_es10f_load_rsp_encode(&none, &w), PL_OK);
    cr_assert_eq(w.len, 0);
    cr_assert_eq(pl_es10f_load_rsp_decode(b, n - 1, &r), PL_ERR_DER_LENGTH);
    b[n] = 0x00;
    cr_assert_eq(pl_es10f_load_rsp_decode(b, n + 1, &r), PL_ERR_DER_TRAILING);
    b[1] = 0x36;
    cr_assert_eq(pl_es10f_load_rsp_decode(b, n, &r), PL_ERR_DER_TAG);
    n = unhex("BF37 03 010101", b, sizeof(b)); /* BOOLEAN 01: not DER */
    cr_assert_eq(pl_es10f_load_rsp_decode(b, n, &r), PL_ERR_DER_VALUE);
    n = unhex("BF37 82 1001", b, sizeof(b));
    cr_assert_eq(pl_es10f_load_rsp_decode(b, n + PL_ES10F_PIR_MAX, &r), PL_ERR_DER_TOOBIG);
    /* The encoder refuses anything but one 'BF37'. */
    struct pl_es10f_load_rsp bad = {
        .has_pir = true, .pir = (const uint8_t *)"\x30\x00", .pir_len = 2};
    pl_wr_reset(&w);
    cr_assert_eq(pl_es10f_load_rsp_encode(&bad, &w), PL_ERR_INVAL);
    pl_wr_free(&w);
}

/* ========================================================= DeleteRemainingOtks == */

Test(es10f, counter_semantics)
{
    uint64_t next = 0;
    cr_assert_eq(pl_es10f_counter_check(0, 1), PL_OK);
    cr_assert_eq(pl_es10f_counter_check(0, 0), PL_ERR_INVAL);
    cr_assert_eq(pl_es10f_counter_check(5, 6), PL_OK);
    cr_assert_eq(pl_es10f_counter_check(5, 1000), PL_OK, "gaps are allowed");
    cr_assert_eq(pl_es10f_counter_check(5, 5), PL_ERR_REPLAY);
    cr_assert_eq(pl_es10f_counter_check(5, 4), PL_ERR_REPLAY);
    cr_assert_eq(pl_es10f_counter_check(5, PL_ES10F_COUNTER_MAX), PL_OK);
    cr_assert_eq(pl_es10f_counter_check(5, PL_ES10F_COUNTER_MAX + 1), PL_ERR_INVAL);
    cr_assert_eq(pl_es10f_counter_check(PL_ES10F_COUNTER_MAX, PL_ES10F_COUNTER_MAX), PL_ERR_REPLAY);
    cr_assert_eq(pl_es10f_counter_check(UINT64_MAX, UINT64_MAX), PL_ERR_INVAL);
    cr_assert_eq(pl_es10f_counter_next(0, &next), PL_OK);
    cr_assert_eq(next, 1);
    cr_assert_eq(pl_es10f_counter_next(41, &next), PL_OK);
    cr_assert_eq(next, 42);
    cr_assert_eq(pl_es10f_counter_check(41, next), PL_OK);
    cr_assert_eq(pl_es10f_counter_next(PL_ES10F_COUNTER_MAX - 1, &next), PL_OK);
    cr_assert_eq(next, PL_ES10F_COUNTER_MAX);
    cr_assert_eq(pl_es10f_counter_next(PL_ES10F_COUNTER_MAX, &next), PL_ERR_OVERFLOW);
    cr_assert_eq(pl_es10f_counter_next(1, NULL), PL_ERR_INVAL);
}

Test(es10f, token_golden_bytes)
{
    static const uint8_t tid[2] = {0x01, 0x02};
    struct pl_es10f_token t = {
        .counter = 5, .op = PL_ES10F_OP_DELETE_REMAINING_OTKS, .tid = tid, .tid_len = 2};
    memcpy(t.eid, EID, 16);
    uint8_t want[64];
    size_t n = unhex("FF7A 1C 8010 89049032123451234512345678901235 810105 820101 83020102", want,
                     sizeof(want));
    struct pl_wr w;
    pl_wr_init_dyn(&w, 256);
    cr_assert_eq(pl_es10f_token_encode(&t, &w), PL_OK);
    cr_assert_eq(w.len, n);
    cr_assert_arr_eq(w.buf, want, n);
    /* Without transactionId; a counter needing a leading zero octet. */
    t.tid = NULL;
    t.tid_len = 0;
    t.counter = 0x80;
    n = unhex("FF7A 19 8010 89049032123451234512345678901235 8102 0080 820101", want, sizeof(want));
    pl_wr_reset(&w);
    cr_assert_eq(pl_es10f_token_encode(&t, &w), PL_OK);
    cr_assert_eq(w.len, n);
    cr_assert_arr_eq(w.buf, want, n);
    t.tid_len = 17;
    t.tid = TID;
    pl_wr_reset(&w);
    cr_assert_eq(pl_es10f_token_encode(&t, &w), PL_ERR_INVAL);
    pl_wr_free(&w);
}

Test(es10f, receipt_golden_bytes)
{
    struct pl_es10f_token t = {.counter = 7, .op = 1};
    struct pl_es10f_receipt r;
    memcpy(t.eid, EID, 16);
    pl_es10f_receipt_init(&r, &t);
    r.n_deleted = 3;
    r.deleted[0] = 2;
    r.deleted[1] = 200;
    r.deleted[2] = 0xFFFF;
    uint8_t want[80];
    size_t n = unhex("FF7B 26 8010 89049032123451234512345678901235 810107 820101"
                     " A40C 020102 020200C8 020300FFFF",
                     want, sizeof(want));
    struct pl_wr w;
    pl_wr_init_dyn(&w, 256);
    cr_assert_eq(pl_es10f_receipt_encode(&r, &w), PL_OK);
    cr_assert_eq(w.len, n);
    cr_assert_arr_eq(w.buf, want, n);
    r.deleted[2] = 200; /* duplicate */
    pl_wr_reset(&w);
    cr_assert_eq(pl_es10f_receipt_encode(&r, &w), PL_ERR_INVAL);
    r.deleted[2] = 1; /* unsorted */
    pl_wr_free(&w);
    pl_wr_init_dyn(&w, 256);
    cr_assert_eq(pl_es10f_receipt_encode(&r, &w), PL_ERR_INVAL);
    pl_wr_free(&w);
}

struct dotk {
    struct pl_eckey *km;    /* the Key Maker (CERT.DPf) token key */
    struct pl_eckey *euicc; /* SK.EUICC.SIG */
    uint8_t *cert;
    size_t cert_len;
    struct pl_es10f_delete_otks_req req;
    struct pl_wr enc;
};

static void dotk_init(struct dotk *x, enum pl_curve c, const uint8_t *tid, size_t tid_len)
{
    struct pl_rng rng = PL_RNG_SYSTEM;
    memset(x, 0, sizeof(*x));
    x->km = genkey(c);
    x->euicc = genkey(c);
    x->cert =
        read_src(c == PL_CURVE_P256 ? "tests/data/sgp26/pysim-dppb/CERT_S_SM_DPpb_ECDSA_NIST.der"
                                    : "tests/data/sgp26/pysim-dppb/CERT_S_SM_DPpb_ECDSA_BRP.der",
                 &x->cert_len);
    memcpy(x->req.token.eid, EID, 16);
    x->req.token.counter = 42;
    x->req.token.op = PL_ES10F_OP_DELETE_REMAINING_OTKS;
    x->req.token.tid = tid;
    x->req.token.tid_len = tid_len;
    chain1(&x->req.signer_chain, x->cert, x->cert_len);
    cr_assert_eq(pl_es10f_token_sign(&x->req.token, x->km, &rng, x->req.sig), PL_OK);
    pl_wr_init_dyn(&x->enc, PL_ES10F_DELETE_OTKS_REQ_MAX);
    cr_assert_eq(pl_es10f_delete_otks_req_encode(&x->req, &x->enc), PL_OK);
}

static void dotk_free(struct dotk *x)
{
    pl_eckey_free(x->km);
    pl_eckey_free(x->euicc);
    free(x->cert);
    pl_wr_free(&x->enc);
}

static void delete_request_roundtrip(enum pl_curve c)
{
    struct dotk x;
    struct pl_es10f_delete_otks_req d;
    struct pl_wr w;
    dotk_init(&x, c, TID, 8);
    cr_assert_eq(pl_es10f_delete_otks_req_decode(x.enc.buf, x.enc.len, &d), PL_OK);
    cr_assert_arr_eq(d.token.eid, EID, 16);
    cr_assert_eq(d.token.counter, 42);
    cr_assert_eq(d.token.op, 1);
    cr_assert_eq(d.token.tid_len, 8);
    cr_assert_arr_eq(d.token.tid, TID, 8);
    cr_assert_arr_eq(d.sig, x.req.sig, 64);
    cr_assert_eq(d.signer_chain.n, 1);
    cr_assert_arr_eq(d.signer_chain.cert[0].der, x.cert, x.cert_len);
    cr_assert_eq(d.raw, x.enc.buf);
    cr_assert_eq(d.raw_len, x.enc.len);
    cr_assert_eq(d.signed_raw[0], 0xFF);
    cr_assert_eq(d.signed_raw[1], 0x7A);
    cr_assert_eq(pl_es10f_delete_otks_req_verify(&d, x.km), PL_OK);
    /* The signed part is exactly pl_es10f_token_encode(). */
    pl_wr_init_dyn(&w, PL_ES10F_DELETE_OTKS_REQ_MAX);
    cr_assert_eq(pl_es10f_token_encode(&x.req.token, &w), PL_OK);
    cr_assert_eq(w.len, d.signed_raw_len);
    cr_assert_arr_eq(w.buf, d.signed_raw, w.len);
    /* Canonical re-encoding. */
    pl_wr_reset(&w);
    cr_assert_eq(pl_es10f_delete_otks_req_encode(&d, &w), PL_OK);
    cr_assert_eq(w.len, x.enc.len);
    cr_assert_arr_eq(w.buf, x.enc.buf, w.len);
    pl_wr_free(&w);
    /* Wrong keys. */
    cr_assert_eq(pl_es10f_delete_otks_req_verify(&d, x.euicc), PL_ERR_BAD_SIGNATURE);
    struct pl_eckey *other = genkey(c);
    cr_assert_eq(pl_es10f_delete_otks_req_verify(&d, other), PL_ERR_BAD_SIGNATURE);
    pl_eckey_free(other);
    cr_assert_eq(pl_es10f_delete_otks_req_verify(&x.req, x.km), PL_ERR_INVAL, "not decoded");
    dotk_free(&x);
}

Test(es10f, delete_request_roundtrip_p256)
{
    delete_request_roundtrip(PL_CURVE_P256);
}

Test(es10f, delete_request_roundtrip_brainpool)
{
    delete_request_roundtrip(PL_CURVE_BP256R1);
}

static int req_accept(const uint8_t *p, size_t len, const void *ctx, bool *decoded)
{
    struct pl_es10f_delete_otks_req d;
    if (pl_es10f_delete_otks_req_decode(p, len, &d) != PL_OK)
        return PL_ERR_MALFORMED;
    *decoded = true;
    int rc = pl_es10f_delete_otks_req_verify(&d, ctx);
    cr_assert(rc == PL_OK || rc == PL_ERR_BAD_SIGNATURE);
    return rc;
}

Test(es10f, delete_request_every_signed_byte)
{
    struct dotk x;
    struct pl_es10f_delete_otks_req d;
    dotk_init(&x, PL_CURVE_P256, TID, 16);
    cr_assert_eq(pl_es10f_delete_otks_req_decode(x.enc.buf, x.enc.len, &d), PL_OK);
    size_t from = (size_t)(d.signed_raw - x.enc.buf);
    size_t to = from + d.signed_raw_len + 3 + 64; /* the token and the signature */
    flip_all(x.enc.buf, x.enc.len, from, to, 1, req_accept, x.km);
    dotk_free(&x);
}

Test(es10f, delete_request_check)
{
    struct dotk x;
    struct pl_es10f_delete_otks_req d;
    struct pl_rng rng = PL_RNG_SYSTEM;
    int reason = -1;
    dotk_init(&x, PL_CURVE_P256, NULL, 0);
    cr_assert_eq(pl_es10f_delete_otks_req_decode(x.enc.buf, x.enc.len, &d), PL_OK);
    cr_assert_null(d.token.tid);
    cr_assert_eq(d.token.tid_len, 0);
    /* Accepted after any lower counter. */
    cr_assert_eq(pl_es10f_delete_otks_req_check(&d, x.km, EID, 0, &reason), PL_OK);
    cr_assert_eq(reason, 0);
    cr_assert_eq(pl_es10f_delete_otks_req_check(&d, x.km, EID, 41, &reason), PL_OK);
    /* Replay: same or lower than the last accepted counter. */
    cr_assert_eq(pl_es10f_delete_otks_req_check(&d, x.km, EID, 42, &reason), PL_ERR_REPLAY);
    cr_assert_eq(reason, PL_ES10F_DOTK_REPLAY_ERROR);
    cr_assert_eq(pl_es10f_delete_otks_req_check(&d, x.km, EID, 100, &reason), PL_ERR_REPLAY);
    cr_assert_eq(reason, PL_ES10F_DOTK_REPLAY_ERROR);
    /* Another eUICC. */
    uint8_t eid2[16];
    memcpy(eid2, EID, 16);
    eid2[8] ^= 0x10;
    cr_assert_eq(pl_es10f_delete_otks_req_check(&d, x.km, eid2, 0, &reason), PL_ERR_DENIED);
    cr_assert_eq(reason, PL_ES10F_DOTK_INVALID_EID);
    /* Signature first: a forged token is invalidSignature even when its EID and counter
     * are also wrong. */
    cr_assert_eq(pl_es10f_delete_otks_req_check(&d, x.euicc, eid2, 100, &reason),
                 PL_ERR_BAD_SIGNATURE);
    cr_assert_eq(reason, PL_ES10F_DOTK_INVALID_SIGNATURE);

    /* Out-of-range counters and unknown operations, properly signed. */
    struct {
        uint64_t counter;
        uint32_t op;
        int rc, reason;
    } cases[] = {
        {0, 1, PL_ERR_INVAL, PL_ES10F_DOTK_COUNTER_OUT_OF_RANGE},
        {PL_ES10F_COUNTER_MAX + 1, 1, PL_ERR_INVAL, PL_ES10F_DOTK_COUNTER_OUT_OF_RANGE},
        {UINT64_MAX, 1, PL_ERR_INVAL, PL_ES10F_DOTK_COUNTER_OUT_OF_RANGE},
        {PL_ES10F_COUNTER_MAX, 1, PL_OK, 0},
        {43, 0, PL_ERR_UNSUPPORTED, PL_ES10F_DOTK_UNSUPPORTED_OPERATION},
        {43, 2, PL_ERR_UNSUPPORTED, PL_ES10F_DOTK_UNSUPPORTED_OPERATION},
        {43, UINT32_MAX, PL_ERR_UNSUPPORTED, PL_ES10F_DOTK_UNSUPPORTED_OPERATION},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct pl_es10f_delete_otks_req r = x.req;
        struct pl_wr w;
        r.token.counter = cases[i].counter;
        r.token.op = cases[i].op;
        cr_assert_eq(pl_es10f_token_sign(&r.token, x.km, &rng, r.sig), PL_OK);
        pl_wr_init_dyn(&w, PL_ES10F_DELETE_OTKS_REQ_MAX);
        cr_assert_eq(pl_es10f_delete_otks_req_encode(&r, &w), PL_OK);
        cr_assert_eq(pl_es10f_delete_otks_req_decode(w.buf, w.len, &d), PL_OK, "case %zu", i);
        cr_assert_eq(d.token.counter, cases[i].counter);
        cr_assert_eq(pl_es10f_delete_otks_req_check(&d, x.km, EID, 5, &reason), cases[i].rc,
                     "case %zu", i);
        cr_assert_eq(reason, cases[i].reason, "case %zu", i);
        pl_wr_free(&w);
    }
    cr_assert_eq(pl_es10f_delete_otks_req_check(&d, x.km, EID, 5, NULL), PL_ERR_INVAL);
    cr_assert_eq(pl_es10f_delete_otks_req_check(&x.req, x.km, EID, 5, &reason), PL_ERR_INVAL);
    dotk_free(&x);
}

#define SIG64                                                                                      \
    "5F3740 0000000000000000000000000000000000000000000000000000000000000000"                      \
    "0000000000000000000000000000000000000000000000000000000000000000"

/* Appends the bytes of a hex string. */
static void put_hex(struct pl_wr *w, const char *hex)
{
    uint8_t b[512];
    size_t n = unhex(hex, b, sizeof(b));
    pl_wr_bytes(w, b, n);
}

/* Decodes FF74 { FF7A { token }, sig, chain } built from hex pieces (sig and chain are
 * whole TLVs, token is the token's contents). */
static int req_raw(const char *token, const char *sig, const char *chain)
{
    struct pl_wr w;
    struct pl_es10f_delete_otks_req d;
    pl_wr_init_dyn(&w, 4096);
    size_t m = pl_der_begin(&w, 0xFF74);
    size_t t = pl_der_begin(&w, 0xFF7A);
    put_hex(&w, token);
    pl_der_end(&w, t);
    put_hex(&w, sig);
    put_hex(&w, chain);
    cr_assert_eq(pl_der_end(&w, m), PL_OK);
    int rc = pl_es10f_delete_otks_req_decode(w.buf, w.len, &d);
    pl_wr_free(&w);
    return rc;
}

/* Decodes FF75 { A0 { FF7B { receipt }, sig } } built from hex pieces. */
static int rcpt_raw(const char *receipt, const char *sig, struct pl_es10f_delete_otks_rsp *d)
{
    struct pl_wr w;
    pl_wr_init_dyn(&w, 4096);
    size_t m = pl_der_begin(&w, 0xFF75);
    size_t a = pl_der_begin(&w, 0xA0);
    size_t r = pl_der_begin(&w, 0xFF7B);
    put_hex(&w, receipt);
    pl_der_end(&w, r);
    put_hex(&w, sig);
    pl_der_end(&w, a);
    cr_assert_eq(pl_der_end(&w, m), PL_OK);
    int rc = pl_es10f_delete_otks_rsp_decode(w.buf, w.len, d);
    pl_wr_free(&w);
    return rc;
}

Test(es10f, delete_request_rejected)
{
    struct pl_es10f_delete_otks_req d;
    struct dotk x;
    uint8_t b[2048];
    size_t n;
    dotk_init(&x, PL_CURVE_P256, TID, 16);
    for (size_t k = 0; k < x.enc.len; k++) {
        int rc = pl_es10f_delete_otks_req_decode(x.enc.buf, k, &d);
        cr_assert(rc == PL_ERR_TRUNCATED || rc == PL_ERR_DER_LENGTH, "prefix %zu: %d", k, rc);
    }
    memcpy(b, x.enc.buf, x.enc.len);
    b[x.enc.len] = 0;
    cr_assert_eq(pl_es10f_delete_otks_req_decode(b, x.enc.len + 1, &d), PL_ERR_DER_TRAILING);
    b[1] = 0x75;
    cr_assert_eq(pl_es10f_delete_otks_req_decode(b, x.enc.len, &d), PL_ERR_DER_TAG);
    dotk_free(&x);

    /* Hand-made requests: FF74 { FF7A { token fields }, signature, chain }. */
#define EIDH   "8010 89049032123451234512345678901235 "
#define OK_SIG SIG64
    cr_assert_eq(req_raw(EIDH "810101 820101", SIG64, "A002 3000"), PL_OK);
    cr_assert_eq(req_raw(EIDH "810101 820101 830101", SIG64, "A002 3000"), PL_OK);
    cr_assert_eq(req_raw(EIDH "810180 820101", SIG64, "A002 3000"), PL_ERR_DER_VALUE,
                 "negative counter");
    cr_assert_eq(req_raw(EIDH "8109 010000000000000000 820101", SIG64, "A002 3000"),
                 PL_ERR_OVERFLOW, "counter over 64 bits");
    cr_assert_eq(req_raw(EIDH "81020001 820101", SIG64, "A002 3000"), PL_ERR_DER_NONMINIMAL);
    cr_assert_eq(req_raw(EIDH "810101 8205 0100000000", SIG64, "A002 3000"), PL_ERR_DER_VALUE,
                 "op over 32 bits");
    cr_assert_eq(req_raw(EIDH "810101 820101 8300", SIG64, "A002 3000"), PL_ERR_DER_VALUE,
                 "empty tid");
    cr_assert_eq(
        req_raw(EIDH "810101 820101 8311 0102030405060708090A0B0C0D0E0F1011", SIG64, "A002 3000"),
        PL_ERR_DER_VALUE, "17-byte tid");
    cr_assert_eq(req_raw(EIDH "810101 820101 8400", SIG64, "A002 3000"), PL_ERR_DER_TRAILING,
                 "unknown field");
    cr_assert_eq(req_raw(EIDH "820101", SIG64, "A002 3000"), PL_ERR_DER_TAG, "no counter");
    cr_assert_eq(req_raw("800F 890490321234512345123456789012 810101 820101", SIG64, "A002 3000"),
                 PL_ERR_DER_VALUE, "15-byte EID");
    cr_assert_eq(req_raw(EIDH "810101 820101", SIG64, "A000"), PL_ERR_DER_VALUE, "empty chain");
    cr_assert_eq(req_raw(EIDH "810101 820101", SIG64, ""), PL_ERR_TRUNCATED, "no chain");
    cr_assert_eq(req_raw(EIDH "810101 820101", SIG64, "A002 0400"), PL_ERR_DER_TAG,
                 "chain element not a SEQUENCE");
    cr_assert_eq(req_raw(EIDH "810101 820101", SIG64, "A002 3000 00"), PL_ERR_DER_TRAILING);
    cr_assert_eq(req_raw(EIDH "810101 820101", "5F3701 00", "A002 3000"), PL_ERR_DER_VALUE,
                 "1-byte signature");
    cr_assert_eq(req_raw(EIDH "810101 820101", "", "A002 3000"), PL_ERR_DER_TAG, "no signature");
    n = unhex("FF74 83 010000", b, sizeof(b));
    cr_assert_eq(pl_es10f_delete_otks_req_decode(b, n, &d), PL_ERR_DER_TOOBIG);
#undef EIDH
#undef OK_SIG
}

/* A signed receipt response for the request of x, deleting ids. */
static void make_receipt(const struct dotk *x, const struct pl_es10f_token *tok,
                         const uint16_t *ids, size_t n, struct pl_wr *out)
{
    struct pl_rng rng = PL_RNG_SYSTEM;
    struct pl_es10f_delete_otks_rsp r;
    memset(&r, 0, sizeof(r));
    r.ok = true;
    pl_es10f_receipt_init(&r.receipt, tok);
    r.receipt.n_deleted = n;
    for (size_t i = 0; i < n; i++)
        r.receipt.deleted[i] = ids[i];
    cr_assert_eq(pl_es10f_receipt_sign(&r.receipt, x->euicc, &rng, r.sig), PL_OK);
    pl_wr_init_dyn(out, PL_ES10F_DELETE_OTKS_RSP_MAX);
    cr_assert_eq(pl_es10f_delete_otks_rsp_encode(&r, out), PL_OK);
}

static void delete_response_roundtrip(enum pl_curve c)
{
    struct dotk x;
    struct pl_es10f_delete_otks_req req;
    struct pl_es10f_delete_otks_rsp d;
    struct pl_wr w, w2;
    static const uint16_t ids[] = {2, 3, 9, 64};
    dotk_init(&x, c, TID, 16);
    /* The eUICC side: decode, check, execute, answer. */
    int reason = -1;
    cr_assert_eq(pl_es10f_delete_otks_req_decode(x.enc.buf, x.enc.len, &req), PL_OK);
    cr_assert_eq(pl_es10f_delete_otks_req_check(&req, x.km, EID, 0, &reason), PL_OK);
    make_receipt(&x, &req.token, ids, 4, &w);
    /* FF75 L A0 L FF7B ... */
    cr_assert_eq(w.buf[0], 0xFF);
    cr_assert_eq(w.buf[1], 0x75);
    cr_assert_eq(pl_es10f_delete_otks_rsp_decode(w.buf, w.len, &d), PL_OK);
    cr_assert(d.ok);
    cr_assert_arr_eq(d.receipt.eid, EID, 16);
    cr_assert_eq(d.receipt.counter, 42);
    cr_assert_eq(d.receipt.op, 1);
    cr_assert_eq(d.receipt.tid_len, 16);
    cr_assert_arr_eq(d.receipt.tid, TID, 16);
    cr_assert_eq(d.receipt.n_deleted, 4);
    cr_assert_arr_eq(d.receipt.deleted, ids, sizeof(ids));
    cr_assert_eq(d.signed_raw[0], 0xFF);
    cr_assert_eq(d.signed_raw[1], 0x7B);
    /* The Key Maker side. */
    cr_assert_eq(pl_es10f_delete_otks_rsp_verify(&d, x.euicc, &x.req.token), PL_OK);
    cr_assert_eq(pl_es10f_delete_otks_rsp_verify(&d, x.km, &x.req.token), PL_ERR_BAD_SIGNATURE);
    /* A valid receipt for another token is a replay. */
    struct pl_es10f_token other = x.req.token;
    other.counter = 43;
    cr_assert_eq(pl_es10f_delete_otks_rsp_verify(&d, x.euicc, &other), PL_ERR_REPLAY);
    other = x.req.token;
    other.tid_len = 15;
    cr_assert_eq(pl_es10f_delete_otks_rsp_verify(&d, x.euicc, &other), PL_ERR_REPLAY);
    other = x.req.token;
    other.tid = NULL;
    other.tid_len = 0;
    cr_assert_eq(pl_es10f_delete_otks_rsp_verify(&d, x.euicc, &other), PL_ERR_REPLAY);
    other = x.req.token;
    other.eid[15] ^= 1;
    cr_assert_eq(pl_es10f_delete_otks_rsp_verify(&d, x.euicc, &other), PL_ERR_REPLAY);
    other = x.req.token;
    other.op = 2;
    cr_assert_eq(pl_es10f_delete_otks_rsp_verify(&d, x.euicc, &other), PL_ERR_REPLAY);
    /* Canonical re-encoding. */
    pl_wr_init_dyn(&w2, PL_ES10F_DELETE_OTKS_RSP_MAX);
    cr_assert_eq(pl_es10f_delete_otks_rsp_encode(&d, &w2), PL_OK);
    cr_assert_eq(w2.len, w.len);
    cr_assert_arr_eq(w2.buf, w.buf, w.len);
    pl_wr_free(&w2);
    pl_wr_free(&w);
    /* An empty list of deleted OTKs is well-formed. */
    make_receipt(&x, &req.token, NULL, 0, &w);
    cr_assert_eq(pl_es10f_delete_otks_rsp_decode(w.buf, w.len, &d), PL_OK);
    cr_assert_eq(d.receipt.n_deleted, 0);
    cr_assert_eq(pl_es10f_delete_otks_rsp_verify(&d, x.euicc, &x.req.token), PL_OK);
    pl_wr_free(&w);
    dotk_free(&x);
}

Test(es10f, delete_response_roundtrip_p256)
{
    delete_response_roundtrip(PL_CURVE_P256);
}

Test(es10f, delete_response_roundtrip_brainpool)
{
    delete_response_roundtrip(PL_CURVE_BP256R1);
}

static int rsp_accept(const uint8_t *p, size_t len, const void *ctx, bool *decoded)
{
    const struct dotk *x = ctx;
    struct pl_es10f_delete_otks_rsp d;
    if (pl_es10f_delete_otks_rsp_decode(p, len, &d) != PL_OK)
        return PL_ERR_MALFORMED;
    *decoded = true;
    /* The signature is checked before the echo fields, so every decodable flip of the
     * signed part or the signature is a bad signature. */
    int rc = pl_es10f_delete_otks_rsp_verify(&d, x->euicc, &x->req.token);
    cr_assert_eq(rc, PL_ERR_BAD_SIGNATURE);
    return rc;
}

Test(es10f, delete_response_every_signed_byte)
{
    struct dotk x;
    struct pl_es10f_delete_otks_rsp d;
    struct pl_wr w;
    static const uint16_t ids[] = {1, 2, 3};
    dotk_init(&x, PL_CURVE_P256, TID, 4);
    make_receipt(&x, &x.req.token, ids, 3, &w);
    cr_assert_eq(pl_es10f_delete_otks_rsp_decode(w.buf, w.len, &d), PL_OK);
    size_t from = (size_t)(d.signed_raw - w.buf);
    flip_all(w.buf, w.len, from, w.len, 1, rsp_accept, &x);
    pl_wr_free(&w);
    dotk_free(&x);
}

Test(es10f, delete_response_error_arm)
{
    struct pl_es10f_delete_otks_rsp r, d;
    struct pl_wr w;
    memset(&r, 0, sizeof(r));
    r.ok = false;
    r.error = PL_ES10F_DOTK_REPLAY_ERROR;
    pl_wr_init_dyn(&w, 64);
    cr_assert_eq(pl_es10f_delete_otks_rsp_encode(&r, &w), PL_OK);
    cr_assert_eq(w.len, 6);
    cr_assert_arr_eq(w.buf, ((const uint8_t[]){0xFF, 0x75, 0x03, 0x81, 0x01, 0x04}), 6);
    cr_assert_eq(pl_es10f_delete_otks_rsp_decode(w.buf, w.len, &d), PL_OK);
    cr_assert(!d.ok);
    cr_assert_eq(d.error, PL_ES10F_DOTK_REPLAY_ERROR);
    cr_assert_null(d.signed_raw);
    struct pl_es10f_token t = {.counter = 1};
    struct pl_eckey *k = genkey(PL_CURVE_P256);
    cr_assert_eq(pl_es10f_delete_otks_rsp_verify(&d, k, &t), PL_ERR_STATE);
    pl_eckey_free(k);
    /* Codes outside 1..127. */
    r.error = 0;
    pl_wr_reset(&w);
    cr_assert_eq(pl_es10f_delete_otks_rsp_encode(&r, &w), PL_ERR_INVAL);
    r.error = 128;
    pl_wr_free(&w);
    pl_wr_init_dyn(&w, 64);
    cr_assert_eq(pl_es10f_delete_otks_rsp_encode(&r, &w), PL_ERR_INVAL);
    pl_wr_free(&w);
    uint8_t b[64];
    size_t n = unhex("FF75 03 810100", b, sizeof(b));
    cr_assert_eq(pl_es10f_delete_otks_rsp_decode(b, n, &d), PL_ERR_DER_VALUE);
    n = unhex("FF75 04 81020080", b, sizeof(b));
    cr_assert_eq(pl_es10f_delete_otks_rsp_decode(b, n, &d), PL_ERR_DER_VALUE);
    n = unhex("FF75 03 81017F", b, sizeof(b));
    cr_assert_eq(pl_es10f_delete_otks_rsp_decode(b, n, &d), PL_OK);
    cr_assert_eq(d.error, 127);
    /* Both arms, no arm, an unknown arm. */
    n = unhex("FF75 06 810104 810104", b, sizeof(b));
    cr_assert_eq(pl_es10f_delete_otks_rsp_decode(b, n, &d), PL_ERR_DER_TRAILING);
    n = unhex("FF75 00", b, sizeof(b));
    cr_assert_eq(pl_es10f_delete_otks_rsp_decode(b, n, &d), PL_ERR_TRUNCATED);
    n = unhex("FF75 03 820104", b, sizeof(b));
    cr_assert_eq(pl_es10f_delete_otks_rsp_decode(b, n, &d), PL_ERR_DER_TAG);
    n = unhex("FF75 02 A100", b, sizeof(b));
    cr_assert_eq(pl_es10f_delete_otks_rsp_decode(b, n, &d), PL_ERR_DER_TAG);
    n = unhex("FF74 03 810104", b, sizeof(b));
    cr_assert_eq(pl_es10f_delete_otks_rsp_decode(b, n, &d), PL_ERR_DER_TAG);
    n = unhex("FF75 03 810104 00", b, sizeof(b));
    cr_assert_eq(pl_es10f_delete_otks_rsp_decode(b, n, &d), PL_ERR_DER_TRAILING);
    n = unhex("FF75 04 810104", b, sizeof(b));
    cr_assert_eq(pl_es10f_delete_otks_rsp_decode(b, n, &d), PL_ERR_DER_LENGTH);
    /* Names. */
    cr_assert_str_eq(pl_es10f_dotk_error_name(PL_ES10F_DOTK_REPLAY_ERROR), "replayError");
    cr_assert_str_eq(pl_es10f_dotk_error_name(PL_ES10F_DOTK_COUNTER_OUT_OF_RANGE),
                     "counterValueOutOfRange");
    cr_assert_str_eq(pl_es10f_dotk_error_name(PL_ES10F_DOTK_INVALID_SIGNATURE), "invalidSignature");
    cr_assert_str_eq(pl_es10f_dotk_error_name(99), "unknown");
}

Test(es10f, delete_response_receipt_rejected)
{
    struct pl_es10f_delete_otks_rsp d;
#define HEAD "8010 89049032123451234512345678901235 810101 820101 "
    cr_assert_eq(rcpt_raw(HEAD "A406 020101 020102", SIG64, &d), PL_OK);
    cr_assert_eq(d.receipt.n_deleted, 2);
    cr_assert_eq(rcpt_raw(HEAD "830107 A400", SIG64, &d), PL_OK);
    cr_assert_eq(d.receipt.tid_len, 1);
    cr_assert_eq(rcpt_raw(HEAD "A406 020102 020101", SIG64, &d), PL_ERR_DER_VALUE, "unsorted");
    cr_assert_eq(rcpt_raw(HEAD "A406 020101 020101", SIG64, &d), PL_ERR_DER_VALUE, "duplicate");
    cr_assert_eq(rcpt_raw(HEAD "A408 020101 0203010000", SIG64, &d), PL_ERR_DER_VALUE, "65536");
    cr_assert_eq(rcpt_raw(HEAD "A403 0201FF", SIG64, &d), PL_ERR_DER_VALUE, "negative id");
    cr_assert_eq(rcpt_raw(HEAD "A406 020101 040102", SIG64, &d), PL_ERR_DER_TAG, "not an INTEGER");
    cr_assert_eq(rcpt_raw(HEAD "8400", SIG64, &d), PL_ERR_DER_TAG, "no list");
    cr_assert_eq(rcpt_raw(HEAD, SIG64, &d), PL_ERR_TRUNCATED, "no list at the end");
    cr_assert_eq(rcpt_raw(HEAD "A400 0500", SIG64, &d), PL_ERR_DER_TRAILING, "extra field");
    cr_assert_eq(rcpt_raw(HEAD "A400", "", &d), PL_ERR_TRUNCATED, "no signature");
    cr_assert_eq(rcpt_raw(HEAD "A400", SIG64 "0500", &d), PL_ERR_DER_TRAILING);
    cr_assert_eq(rcpt_raw(HEAD "A400", "5F3700", &d), PL_ERR_DER_VALUE, "empty signature");
#undef HEAD
    /* 65 deleted ids: over the cap. */
    struct pl_wr w;
    pl_wr_init_dyn(&w, 2048);
    size_t m = pl_der_begin(&w, 0xFF75);
    size_t a = pl_der_begin(&w, 0xA0);
    size_t r = pl_der_begin(&w, 0xFF7B);
    pl_der_put_tlv(&w, 0x80, EID, 16);
    pl_der_put_uint(&w, 0x81, 1);
    pl_der_put_uint(&w, 0x82, 1);
    size_t l = pl_der_begin(&w, 0xA4);
    for (unsigned i = 0; i <= PL_ES10F_OTK_MAX; i++)
        pl_der_put_uint(&w, 0x02, i);
    pl_der_end(&w, l);
    pl_der_end(&w, r);
    uint8_t sig[64] = {0};
    pl_der_put_tlv(&w, 0x5F37, sig, 64);
    pl_der_end(&w, a);
    cr_assert_eq(pl_der_end(&w, m), PL_OK);
    cr_assert_eq(pl_es10f_delete_otks_rsp_decode(w.buf, w.len, &d), PL_ERR_OVERFLOW);
    pl_wr_free(&w);
}

/* ================================================================ fuzz seeds == */

static void write_seed(const char *name, const uint8_t *p, size_t len)
{
    char rel[256], path[512];
    snprintf(rel, sizeof(rel), "tests/fuzz/corpus/es10f/%s", name);
    FILE *fp = fopen(pl_test_src(path, sizeof(path), rel), "wb");
    cr_assert_not_null(fp, "cannot write %s", path);
    cr_assert_eq(fwrite(p, 1, len, fp), len);
    fclose(fp);
}

static void regen_seeds(void)
{
    struct euicc e;
    struct pl_es10f_info info;
    struct pl_wr w;
    euicc_load(&e);
    pl_wr_init_dyn(&w, PL_ES10F_GET_INFO_RSP_MAX);
    cr_assert_eq(pl_es10f_get_info_req_encode(&w), PL_OK);
    write_seed("get_info_req_ok.der", w.buf, w.len);
    pl_wr_reset(&w);
    make_info(&info, &e, 2, NULL);
    cr_assert_eq(pl_es10f_get_info_rsp_encode(&info, &w), PL_OK);
    write_seed("get_info_rsp_ok.der", w.buf, w.len);
    pl_wr_reset(&w);
    struct pl_es10f_load_req lr = {.otk_id = 3, .tid = TID, .tid_len = 16};
    chain1(&lr.dpf_chain, e.cert_eum, e.cert_eum_len);
    cr_assert_eq(pl_es10f_load_req_encode(&lr, &w), PL_OK);
    write_seed("load_req_ok.der", w.buf, w.len);
    uint8_t b[64];
    size_t n = unhex("BF37 0B BF27 05 8003 010203 5F37 00", b, sizeof(b));
    write_seed("load_rsp_pir_ok.der", b, n);
    pl_wr_free(&w);
    euicc_free(&e);

    struct dotk x;
    dotk_init(&x, PL_CURVE_P256, TID, 16);
    write_seed("delete_otks_req_ok.der", x.enc.buf, x.enc.len);
    static const uint16_t ids[] = {1, 4};
    make_receipt(&x, &x.req.token, ids, 2, &w);
    write_seed("delete_otks_rsp_receipt_ok.der", w.buf, w.len);
    pl_wr_free(&w);
    dotk_free(&x);
    struct pl_es10f_delete_otks_rsp er = {.ok = false, .error = 4};
    pl_wr_init_dyn(&w, 64);
    cr_assert_eq(pl_es10f_delete_otks_rsp_encode(&er, &w), PL_OK);
    write_seed("delete_otks_rsp_error_ok.der", w.buf, w.len);
    pl_wr_free(&w);
}

/* Decodes a seed with the decoder its name names. */
static int decode_seed(const char *name, const uint8_t *p, size_t len)
{
    if (strncmp(name, "get_info_req", 12) == 0)
        return pl_es10f_get_info_req_decode(p, len);
    if (strncmp(name, "get_info_rsp", 12) == 0) {
        struct pl_es10f_info *i = malloc(sizeof(*i));
        int rc = pl_es10f_get_info_rsp_decode(p, len, i);
        free(i);
        return rc;
    }
    if (strncmp(name, "load_req", 8) == 0) {
        struct pl_es10f_load_req r;
        return pl_es10f_load_req_decode(p, len, &r);
    }
    if (strncmp(name, "load_rsp", 8) == 0) {
        struct pl_es10f_load_rsp r;
        return pl_es10f_load_rsp_decode(p, len, &r);
    }
    if (strncmp(name, "delete_otks_req", 15) == 0) {
        struct pl_es10f_delete_otks_req r;
        return pl_es10f_delete_otks_req_decode(p, len, &r);
    }
    if (strncmp(name, "delete_otks_rsp", 15) == 0) {
        struct pl_es10f_delete_otks_rsp r;
        return pl_es10f_delete_otks_rsp_decode(p, len, &r);
    }
    return PL_ERR_NOT_FOUND;
}

Test(es10f, fuzz_seeds)
{
    if (getenv("PL_REGEN_CORPUS"))
        regen_seeds();
    char path[512];
    DIR *dir = opendir(pl_test_src(path, sizeof(path), "tests/fuzz/corpus/es10f"));
    cr_assert_not_null(dir);
    struct dirent *e;
    int ok = 0;
    while ((e = readdir(dir)) != NULL) {
        if (!strstr(e->d_name, "_ok"))
            continue;
        char rel[512];
        size_t len;
        snprintf(rel, sizeof(rel), "tests/fuzz/corpus/es10f/%s", e->d_name);
        uint8_t *b = read_src(rel, &len);
        cr_assert_eq(decode_seed(e->d_name, b, len), PL_OK, "%s", e->d_name);
        free(b);
        ok++;
    }
    closedir(dir);
    cr_assert_geq(ok, 7);
}
