/* Unit tests: X.509 parsing and chain verification (protocol/x509.h).
 * Data: SGP.26 Variant O chain (CI -> EUM -> eUICC, eIM) and the pySim SGP.26-style
 * DPpb certificates, NIST P-256 and brainpoolP256r1 (tests/data/README.md); plus small
 * certificates made here with mbedTLS x509write for cases no public data covers
 * (name constraints, pathLen, a leaf acting as CA, unknown critical extensions).
 * GSMA SGP.22 v2.5 §4.5.2, RFC 5280 §4.2, §6.1. */
#include <criterion/criterion.h>
#include <mbedtls/ecp.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>
#include <stdlib.h>
#include <string.h>

#include "pl_test.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/der.h"
#include "provline/protocol/wr.h"
#include "provline/protocol/x509.h"

/* Instants (seconds since the epoch, UTC). */
#define T_2020_01_01 ((time_t)1577836800)
#define T_2024_07_16_0953 ((time_t)1721123580) /* CI valid, EUM not yet (09:54:05) */
#define T_2025_01_01 ((time_t)1735689600)
#define T_2031_01_01 ((time_t)1924992000)
#define T_2060_01_01 ((time_t)2840140800)

static uint8_t *read_data(const char *rel, size_t *len)
{
    char path[512];
    uint8_t *buf = pl_test_read_file(pl_test_src(path, sizeof(path), rel), len);
    cr_assert(buf, "cannot read %s", rel);
    return buf;
}

static struct pl_cert *load(const char *rel)
{
    size_t len = 0;
    uint8_t *buf = read_data(rel, &len);
    struct pl_cert *c = NULL;
    int rc = pl_cert_parse(buf, len, &c);
    free(buf);
    cr_assert_eq(rc, PL_OK, "parse %s: %s", rel, pl_strerror(rc));
    cr_assert(c);
    return c;
}

#define VO "tests/data/sgp26/variant-o/"
#define DP "tests/data/sgp26/pysim-dppb/"

struct vo {
    struct pl_cert *ci, *eum, *euicc, *eim;
};

static struct vo load_vo(void)
{
    struct vo v = {
        load(VO "CERT_CI_SIG_NIST.der"),
        load(VO "CERT_EUM_SIG_NIST.der"),
        load(VO "CERT_EUICC_SIG_NIST.der"),
        load(VO "CERT_S_EIMsign_ECDSA_NIST.der"),
    };
    return v;
}

static void free_vo(struct vo *v)
{
    pl_cert_free(v->ci);
    pl_cert_free(v->eum);
    pl_cert_free(v->euicc);
    pl_cert_free(v->eim);
}

static int verify1(const struct pl_cert *leaf, const struct pl_cert *inter,
                   const struct pl_cert *root, enum pl_cert_role role, time_t now)
{
    const struct pl_cert *im[1] = {inter};
    return pl_cert_verify_chain(leaf, im, inter ? 1 : 0, root, role, now);
}

/* ---- SGP.26 positive paths ---- */

Test(x509, variant_o_euicc_chain)
{
    struct vo v = load_vo();
    cr_assert_eq(verify1(v.euicc, v.eum, v.ci, PL_CERT_ROLE_EUICC, T_2025_01_01), PL_OK);
    cr_assert_eq(verify1(v.eum, NULL, v.ci, PL_CERT_ROLE_EUM, T_2025_01_01), PL_OK);
    /* The eIM signing cert carries no role OID (SGP.32 defines none): accepted by
     * keyUsage. */
    cr_assert_eq(verify1(v.eim, NULL, v.ci, PL_CERT_ROLE_EIM, T_2025_01_01), PL_OK);
    free_vo(&v);
}

Test(x509, dppb_nist_and_brainpool)
{
    struct pl_cert *ci_n = load(DP "CERT_CI_ECDSA_NIST.der");
    struct pl_cert *ci_b = load(DP "CERT_CI_ECDSA_BRP.der");
    struct pl_cert *dp_n = load(DP "CERT_S_SM_DPpb_ECDSA_NIST.der");
    struct pl_cert *dp_b = load(DP "CERT_S_SM_DPpb_ECDSA_BRP.der");

    cr_assert_eq(pl_cert_curve(ci_n), PL_CURVE_P256);
    cr_assert_eq(pl_cert_curve(ci_b), PL_CURVE_BP256R1);
    cr_assert_eq(pl_cert_curve(dp_b), PL_CURVE_BP256R1);
    cr_assert_eq(verify1(dp_n, NULL, ci_n, PL_CERT_ROLE_DPPB, T_2025_01_01), PL_OK);
    cr_assert_eq(verify1(dp_b, NULL, ci_b, PL_CERT_ROLE_DPPB, T_2025_01_01), PL_OK);
    /* Wrong root: the other curve's CI (same subject name, other key). */
    cr_assert_eq(verify1(dp_n, NULL, ci_b, PL_CERT_ROLE_DPPB, T_2025_01_01), PL_ERR_CERT_CHAIN);
    cr_assert_eq(verify1(dp_b, NULL, ci_n, PL_CERT_ROLE_DPPB, T_2025_01_01), PL_ERR_CERT_CHAIN);
    /* Expired: the DPpb certs end on 2030-03-30. */
    cr_assert_eq(verify1(dp_n, NULL, ci_n, PL_CERT_ROLE_DPPB, T_2031_01_01), PL_ERR_CERT_VALIDITY);
    pl_cert_free(ci_n);
    pl_cert_free(ci_b);
    pl_cert_free(dp_n);
    pl_cert_free(dp_b);
}

Test(x509, same_ci_key_reissued_still_anchors)
{
    /* The pySim NIST CI and the Variant O CI are the same key and name (SKI F541...)
     * issued twice; the anchor is the key, so the Variant O chain verifies under both. */
    struct vo v = load_vo();
    struct pl_cert *ci_n = load(DP "CERT_CI_ECDSA_NIST.der");
    cr_assert_eq(verify1(v.euicc, v.eum, ci_n, PL_CERT_ROLE_EUICC, T_2025_01_01), PL_OK);
    pl_cert_free(ci_n);
    free_vo(&v);
}

/* ---- accessors ---- */

Test(x509, accessors_on_variant_o)
{
    struct vo v = load_vo();
    char s[256];
    uint8_t id[PL_CERT_KEYID_MAX], id2[PL_CERT_KEYID_MAX];
    size_t n = 0, n2 = 0;
    static const uint8_t eum_ski[] = {0xDD, 0x3D, 0xA2, 0x4D, 0x35, 0x0C, 0x1C, 0xC5, 0xD0, 0xAF,
                                      0x09, 0x65, 0xF4, 0x0E, 0xC3, 0x4C, 0x5E, 0xE4, 0x09, 0xF1};
    static const uint8_t eid[PL_CERT_EID_LEN] = {0x89, 0x04, 0x90, 0x32, 0x12, 0x34, 0x51, 0x23,
                                                  0x45, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x35};
    uint8_t got_eid[PL_CERT_EID_LEN];

    cr_assert_eq(pl_cert_subject_serial(v.euicc, s, sizeof(s)), PL_OK);
    cr_assert_str_eq(s, "89049032123451234512345678901235");
    cr_assert_eq(pl_cert_eid(v.euicc, got_eid), PL_OK);
    cr_assert_arr_eq(got_eid, eid, sizeof(eid));
    cr_assert_eq(pl_cert_subject_serial(v.ci, s, sizeof(s)), PL_ERR_NOT_FOUND);
    cr_assert_eq(pl_cert_eid(v.ci, got_eid), PL_ERR_NOT_FOUND);
    cr_assert_eq(pl_cert_subject_serial(v.euicc, s, 8), PL_ERR_OVERFLOW);

    cr_assert_eq(pl_cert_subject_key_id(v.eum, id, sizeof(id), &n), PL_OK);
    cr_assert_eq(n, sizeof(eum_ski));
    cr_assert_arr_eq(id, eum_ski, n);
    cr_assert_eq(pl_cert_authority_key_id(v.euicc, id2, sizeof(id2), &n2), PL_OK);
    cr_assert_eq(n2, n);
    cr_assert_arr_eq(id2, id, n);
    /* The CI has an SKI only (SGP.22 §4.5.2.2). */
    cr_assert_eq(pl_cert_authority_key_id(v.ci, id, sizeof(id), &n), PL_ERR_NOT_FOUND);
    cr_assert_eq(pl_cert_subject_key_id(v.eum, id, 4, &n), PL_ERR_OVERFLOW);

    cr_assert_eq(pl_cert_subject(v.eum, s, sizeof(s)), PL_OK);
    cr_assert_str_eq(s, "C=ES, O=RSP Test EUM, CN=EUM Test");
    cr_assert_eq(pl_cert_issuer(v.eum, s, sizeof(s)), PL_OK);
    cr_assert_str_eq(s, "CN=Test CI, OU=TESTCERT, O=RSPTEST, C=IT");
    cr_assert_eq(pl_cert_subject(v.eum, s, 5), PL_ERR_OVERFLOW);

    int64_t nb = 0, na = 0;
    pl_cert_validity(v.euicc, &nb, &na);
    cr_assert_eq(nb, 1721123698);   /* 2024-07-16 09:54:58Z */
    cr_assert_eq(na, 174521123698); /* 7500-05-10 09:54:58Z */
    cr_assert(pl_cert_is_ca(v.eum));
    cr_assert(pl_cert_is_ca(v.ci));
    cr_assert_not(pl_cert_is_ca(v.euicc));

    const uint8_t *der;
    size_t der_len = 0, file_len = 0;
    uint8_t *file = read_data(VO "CERT_EUICC_SIG_NIST.der", &file_len);
    pl_cert_der(v.euicc, &der, &der_len);
    cr_assert_eq(der_len, file_len);
    cr_assert_arr_eq(der, file, file_len);
    free(file);
    free_vo(&v);
}

Test(x509, public_key_matches_private_key)
{
    struct vo v = load_vo();
    size_t len = 0;
    uint8_t *pem = read_data(VO "SK_EUICC_SIG_NIST.pem", &len);
    struct pl_eckey *sk = NULL, *pk = NULL;
    uint8_t pub_sk[PL_EC_PUB_LEN], pub_cert[PL_EC_PUB_LEN], sig[PL_ECDSA_SIG_LEN];
    static const char msg[] = "IFPP-OTK test message";
    struct pl_rng rng = PL_RNG_SYSTEM;

    cr_assert_eq(pl_eckey_parse(pem, len, &sk), PL_OK);
    free(pem);
    cr_assert_eq(pl_cert_public_key(v.euicc, &pk), PL_OK);
    cr_assert_eq(pl_eckey_curve(pk), PL_CURVE_P256);
    cr_assert_eq(pl_eckey_public(sk, pub_sk), PL_OK);
    cr_assert_eq(pl_cert_public_point(v.euicc, pub_cert), PL_OK);
    cr_assert_arr_eq(pub_sk, pub_cert, PL_EC_PUB_LEN);
    /* End to end: sign with SK.EUICC.SIG, verify with the key from CERT.EUICC. */
    cr_assert_eq(pl_ecdsa_sign(sk, msg, sizeof(msg), &rng, sig), PL_OK);
    cr_assert_eq(pl_ecdsa_verify(pk, msg, sizeof(msg), sig), PL_OK);
    sig[10] ^= 1;
    cr_assert_eq(pl_ecdsa_verify(pk, msg, sizeof(msg), sig), PL_ERR_BAD_SIGNATURE);
    pl_eckey_free(sk);
    pl_eckey_free(pk);
    free_vo(&v);
}

Test(x509, pem_input)
{
    size_t len = 0;
    uint8_t *der = read_data(VO "CERT_EUM_SIG_NIST.der", &len);
    unsigned char pem[4096];
    size_t olen = 0;
    cr_assert_eq(mbedtls_pem_write_buffer("-----BEGIN CERTIFICATE-----\n",
                                          "-----END CERTIFICATE-----\n", der, len, pem,
                                          sizeof(pem) - 16, &olen),
                 0);
    size_t pem_len = strlen((char *)pem);
    struct pl_cert *c = NULL;
    cr_assert_eq(pl_cert_parse(pem, pem_len, &c), PL_OK);
    const uint8_t *raw;
    size_t raw_len;
    pl_cert_der(c, &raw, &raw_len);
    cr_assert_eq(raw_len, len);
    cr_assert_arr_eq(raw, der, len); /* the decoded DER, not a re-encoding */
    pl_cert_free(c);
    /* Leading/trailing whitespace is fine; trailing text is not. */
    char buf[4200];
    snprintf(buf, sizeof(buf), "\n  %s\n\n", (char *)pem);
    cr_assert_eq(pl_cert_parse((uint8_t *)buf, strlen(buf), &c), PL_OK);
    pl_cert_free(c);
    snprintf(buf, sizeof(buf), "%sjunk\n", (char *)pem);
    cr_assert_eq(pl_cert_parse((uint8_t *)buf, strlen(buf), &c), PL_ERR_CERT);
    cr_assert_null(c);
    /* A broken base64 body. */
    memcpy(buf, pem, pem_len + 1);
    buf[40] = '*';
    cr_assert_eq(pl_cert_parse((uint8_t *)buf, pem_len, &c), PL_ERR_CERT);
    free(der);
}

/* ---- negative cases on SGP.26 data ---- */

Test(x509, wrong_root)
{
    struct vo v = load_vo();
    struct pl_cert *ci_b = load(DP "CERT_CI_ECDSA_BRP.der");
    cr_assert_eq(verify1(v.euicc, v.eum, ci_b, PL_CERT_ROLE_EUICC, T_2025_01_01),
                 PL_ERR_CERT_CHAIN);
    cr_assert_eq(verify1(v.eum, NULL, ci_b, PL_CERT_ROLE_EUM, T_2025_01_01), PL_ERR_CERT_CHAIN);
    /* The EUM as trust anchor for the EUM itself: not a CI. */
    cr_assert_eq(verify1(v.eum, NULL, v.eum, PL_CERT_ROLE_EUM, T_2025_01_01), PL_ERR_CERT_USAGE);
    pl_cert_free(ci_b);
    free_vo(&v);
}

Test(x509, expired_and_not_yet_valid)
{
    struct vo v = load_vo();
    /* After the CI's notAfter (2059-07-16): the eUICC's own 7500 date does not help. */
    cr_assert_eq(verify1(v.euicc, v.eum, v.ci, PL_CERT_ROLE_EUICC, T_2060_01_01),
                 PL_ERR_CERT_VALIDITY);
    /* Before anything was issued. */
    cr_assert_eq(verify1(v.euicc, v.eum, v.ci, PL_CERT_ROLE_EUICC, T_2020_01_01),
                 PL_ERR_CERT_VALIDITY);
    /* CI already valid, EUM not yet. */
    cr_assert_eq(verify1(v.eum, NULL, v.ci, PL_CERT_ROLE_EUM, T_2024_07_16_0953),
                 PL_ERR_CERT_VALIDITY);
    /* The eIM cert ends 2031-07-15. */
    cr_assert_eq(verify1(v.eim, NULL, v.ci, PL_CERT_ROLE_EIM, T_2060_01_01), PL_ERR_CERT_VALIDITY);
    free_vo(&v);
}

Test(x509, validity_boundaries_inclusive)
{
    struct pl_cert *ci = load(DP "CERT_CI_ECDSA_NIST.der");
    struct pl_cert *dp = load(DP "CERT_S_SM_DPpb_ECDSA_NIST.der");
    int64_t nb, na;
    pl_cert_validity(dp, &nb, &na);
    cr_assert_eq(verify1(dp, NULL, ci, PL_CERT_ROLE_DPPB, (time_t)nb), PL_OK);
    cr_assert_eq(verify1(dp, NULL, ci, PL_CERT_ROLE_DPPB, (time_t)na), PL_OK);
    cr_assert_eq(verify1(dp, NULL, ci, PL_CERT_ROLE_DPPB, (time_t)(nb - 1)), PL_ERR_CERT_VALIDITY);
    cr_assert_eq(verify1(dp, NULL, ci, PL_CERT_ROLE_DPPB, (time_t)(na + 1)), PL_ERR_CERT_VALIDITY);
    pl_cert_free(ci);
    pl_cert_free(dp);
}

Test(x509, leaf_used_as_ca)
{
    struct vo v = load_vo();
    /* The eUICC cert as the issuer of the eIM cert / as the trust anchor. */
    cr_assert_eq(verify1(v.eim, v.euicc, v.ci, PL_CERT_ROLE_EIM, T_2025_01_01), PL_ERR_CERT_USAGE);
    cr_assert_eq(verify1(v.eim, NULL, v.euicc, PL_CERT_ROLE_EIM, T_2025_01_01), PL_ERR_CERT_USAGE);
    /* ...and a CA used as a leaf: the EUM presented as an eUICC. */
    cr_assert_eq(verify1(v.eum, v.eum, v.ci, PL_CERT_ROLE_EUICC, T_2025_01_01), PL_ERR_CERT_USAGE);
    free_vo(&v);
}

Test(x509, wrong_role)
{
    struct vo v = load_vo();
    struct pl_cert *ci_n = load(DP "CERT_CI_ECDSA_NIST.der");
    struct pl_cert *dp = load(DP "CERT_S_SM_DPpb_ECDSA_NIST.der");
    /* Each certificate verified as something it is not. */
    cr_assert_eq(verify1(v.euicc, NULL, v.ci, PL_CERT_ROLE_DPPB, T_2025_01_01), PL_ERR_CERT_USAGE);
    cr_assert_eq(verify1(dp, NULL, ci_n, PL_CERT_ROLE_EIM, T_2025_01_01), PL_ERR_CERT_USAGE);
    cr_assert_eq(verify1(v.eim, NULL, v.ci, PL_CERT_ROLE_DPPB, T_2025_01_01), PL_ERR_CERT_USAGE);
    cr_assert_eq(verify1(v.euicc, v.eum, v.ci, PL_CERT_ROLE_TLS_SERVER, T_2025_01_01),
                 PL_ERR_CERT_USAGE);
    cr_assert_eq(verify1(dp, NULL, ci_n, PL_CERT_ROLE_EUM, T_2025_01_01), PL_ERR_CERT_USAGE);
    /* Right leaf, wrong shape: a DPpb with an intermediate, an eUICC without its EUM. */
    cr_assert_eq(verify1(dp, v.eum, ci_n, PL_CERT_ROLE_DPPB, T_2025_01_01), PL_ERR_CERT_CHAIN);
    cr_assert_eq(verify1(v.euicc, NULL, v.ci, PL_CERT_ROLE_EUICC, T_2025_01_01), PL_ERR_CERT_CHAIN);
    pl_cert_free(ci_n);
    pl_cert_free(dp);
    free_vo(&v);
}

Test(x509, swapped_intermediate)
{
    struct vo v = load_vo();
    struct pl_cert *dp = load(DP "CERT_S_SM_DPpb_ECDSA_NIST.der");
    /* leaf and intermediate swapped */
    cr_assert_eq(verify1(v.eum, v.euicc, v.ci, PL_CERT_ROLE_EUICC, T_2025_01_01), PL_ERR_CERT_USAGE);
    /* intermediate and root swapped */
    cr_assert_eq(verify1(v.euicc, v.ci, v.eum, PL_CERT_ROLE_EUICC, T_2025_01_01), PL_ERR_CERT_USAGE);
    /* a foreign leaf where the EUM belongs */
    cr_assert_eq(verify1(v.euicc, dp, v.ci, PL_CERT_ROLE_EUICC, T_2025_01_01), PL_ERR_CERT_USAGE);
    pl_cert_free(dp);
    free_vo(&v);
}

Test(x509, tampered_certificates)
{
    struct vo v = load_vo();
    size_t len = 0;
    uint8_t *der = read_data(VO "CERT_EUICC_SIG_NIST.der", &len);
    struct pl_cert *c = NULL;

    /* A byte of the subject CN ("Test eUICC") changed: still parses, no longer signed. */
    uint8_t *cn = NULL;
    for (size_t i = 0; i + 10 <= len; i++) {
        if (memcmp(der + i, "Test eUICC", 10) == 0)
            cn = der + i;
    }
    cr_assert(cn);
    cn[0] = 'B';
    cr_assert_eq(pl_cert_parse(der, len, &c), PL_OK);
    cr_assert_eq(verify1(c, v.eum, v.ci, PL_CERT_ROLE_EUICC, T_2025_01_01), PL_ERR_CERT_CHAIN);
    pl_cert_free(c);
    cn[0] = 'T';
    /* The last byte of the signature value changed. */
    der[len - 1] ^= 0x01;
    cr_assert_eq(pl_cert_parse(der, len, &c), PL_OK);
    cr_assert_eq(verify1(c, v.eum, v.ci, PL_CERT_ROLE_EUICC, T_2025_01_01), PL_ERR_CERT_CHAIN);
    pl_cert_free(c);
    free(der);
    free_vo(&v);
}

Test(x509, malformed_der)
{
    size_t len = 0;
    uint8_t *der = read_data(VO "CERT_EUM_SIG_NIST.der", &len);
    struct pl_cert *c = NULL;
    static const uint8_t garbage[] = {0xde, 0xad, 0xbe, 0xef, 0x30, 0x03, 0x02, 0x01, 0x01};

    /* truncated at every length */
    for (size_t n = 0; n < len; n++) {
        cr_assert_eq(pl_cert_parse(der, n, &c), PL_ERR_CERT, "truncated to %zu", n);
        cr_assert_null(c);
    }
    cr_assert_eq(pl_cert_parse(garbage, sizeof(garbage), &c), PL_ERR_CERT);
    cr_assert_eq(pl_cert_parse(garbage + 4, 5, &c), PL_ERR_CERT);
    /* one trailing byte */
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, der, len);
    longer[len] = 0;
    cr_assert_eq(pl_cert_parse(longer, len + 1, &c), PL_ERR_CERT);
    /* non-minimal outer length: 30 82 LL LL -> 30 83 00 LL LL */
    cr_assert_eq(der[1], 0x82);
    uint8_t *nonmin = malloc(len + 1);
    nonmin[0] = 0x30;
    nonmin[1] = 0x83;
    nonmin[2] = 0x00;
    memcpy(nonmin + 3, der + 2, len - 2);
    cr_assert_eq(pl_cert_parse(nonmin, len + 1, &c), PL_ERR_CERT);
    /* indefinite outer length */
    memcpy(longer, der, len);
    longer[1] = 0x80;
    cr_assert_eq(pl_cert_parse(longer, len, &c), PL_ERR_CERT);
    /* bad arguments */
    cr_assert_eq(pl_cert_parse(der, len, NULL), PL_ERR_INVAL);
    cr_assert_eq(pl_cert_parse(NULL, 5, &c), PL_ERR_INVAL);
    cr_assert_eq(pl_cert_parse(NULL, 0, &c), PL_ERR_CERT);
    free(nonmin);
    free(longer);
    free(der);
}

Test(x509, verify_bad_arguments)
{
    struct vo v = load_vo();
    const struct pl_cert *im[PL_CERT_MAX_INTERMEDIATES + 1] = {v.eum, v.eum, v.eum, v.eum, v.eum};
    cr_assert_eq(pl_cert_verify_chain(NULL, NULL, 0, v.ci, PL_CERT_ROLE_EIM, T_2025_01_01),
                 PL_ERR_INVAL);
    cr_assert_eq(pl_cert_verify_chain(v.eim, NULL, 0, NULL, PL_CERT_ROLE_EIM, T_2025_01_01),
                 PL_ERR_INVAL);
    cr_assert_eq(pl_cert_verify_chain(v.euicc, NULL, 1, v.ci, PL_CERT_ROLE_EUICC, T_2025_01_01),
                 PL_ERR_INVAL);
    cr_assert_eq(pl_cert_verify_chain(v.eim, im, PL_CERT_MAX_INTERMEDIATES + 1, v.ci,
                                      PL_CERT_ROLE_EIM, T_2025_01_01),
                 PL_ERR_INVAL);
    cr_assert_eq(pl_cert_verify_chain(v.eim, NULL, 0, v.ci, (enum pl_cert_role)0, T_2025_01_01),
                 PL_ERR_INVAL);
    free_vo(&v);
}

/* ---- crafted certificates (mbedTLS x509write) ---- */

static int test_rng(void *p, unsigned char *buf, size_t len)
{
    (void)p;
    return pl_rng_system_fill(NULL, buf, len) == PL_OK ? 0 : -1;
}

static void mk_key(mbedtls_pk_context *pk)
{
    mbedtls_pk_init(pk);
    cr_assert_eq(mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), 0);
    cr_assert_eq(mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*pk), test_rng, NULL),
                 0);
}

struct ext {
    const char *oid; /* MBEDTLS_OID_* contents */
    size_t oid_len;
    int critical;
    const uint8_t *val;
    size_t len;
};

struct spec {
    const char *subject, *issuer;
    mbedtls_pk_context *key, *issuer_key;
    int ca;      /* 1: basicConstraints cA TRUE */
    int pathlen; /* -1: none */
    unsigned ku;
    int role;    /* id-rspRole arc, -1: none */
    mbedtls_md_type_t md;
    struct ext extra[2];
};

static struct pl_cert *mk_cert(const struct spec *s)
{
    mbedtls_x509write_cert w;
    mbedtls_mpi serial;
    unsigned char buf[2048];
    uint8_t pol[13] = {0x30, 0x0B, 0x30, 0x09, 0x06, 0x07, 0x67, 0x81, 0x12, 0x01, 0x02, 0x01, 0};

    mbedtls_x509write_crt_init(&w);
    mbedtls_mpi_init(&serial);
    cr_assert_eq(mbedtls_mpi_lset(&serial, 4242), 0);
    mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(&w, s->md ? s->md : MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(&w, s->key);
    mbedtls_x509write_crt_set_issuer_key(&w, s->issuer_key);
    cr_assert_eq(mbedtls_x509write_crt_set_serial(&w, &serial), 0);
    cr_assert_eq(mbedtls_x509write_crt_set_validity(&w, "20240101000000", "20340101000000"), 0);
    cr_assert_eq(mbedtls_x509write_crt_set_subject_name(&w, s->subject), 0);
    cr_assert_eq(mbedtls_x509write_crt_set_issuer_name(&w, s->issuer), 0);
    cr_assert_eq(mbedtls_x509write_crt_set_subject_key_identifier(&w), 0);
    cr_assert_eq(mbedtls_x509write_crt_set_authority_key_identifier(&w), 0);
    if (s->ca)
        cr_assert_eq(mbedtls_x509write_crt_set_basic_constraints(&w, 1, s->pathlen), 0);
    if (s->ku)
        cr_assert_eq(mbedtls_x509write_crt_set_key_usage(&w, s->ku), 0);
    if (s->role >= 0) {
        pol[12] = (uint8_t)s->role;
        cr_assert_eq(mbedtls_x509write_crt_set_extension(
                         &w, MBEDTLS_OID_CERTIFICATE_POLICIES,
                         MBEDTLS_OID_SIZE(MBEDTLS_OID_CERTIFICATE_POLICIES), 1, pol, sizeof(pol)),
                     0);
    }
    for (size_t i = 0; i < 2; i++) {
        if (!s->extra[i].oid)
            continue;
        cr_assert_eq(mbedtls_x509write_crt_set_extension(&w, s->extra[i].oid, s->extra[i].oid_len,
                                                         s->extra[i].critical, s->extra[i].val,
                                                         s->extra[i].len),
                     0);
    }
    int n = mbedtls_x509write_crt_der(&w, buf, sizeof(buf), test_rng, NULL);
    cr_assert_gt(n, 0);
    struct pl_cert *c = NULL;
    int rc = pl_cert_parse(buf + sizeof(buf) - (size_t)n, (size_t)n, &c);
    mbedtls_x509write_crt_free(&w);
    mbedtls_mpi_free(&serial);
    return rc == PL_OK ? c : NULL;
}

#define KU_CA (MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN)
#define KU_DS MBEDTLS_X509_KU_DIGITAL_SIGNATURE
#define CI_NAME "CN=Lab CI,O=Lab,C=XX"
#define EUM_NAME "C=XX,O=Lab EUM,CN=Lab EUM"

struct lab {
    mbedtls_pk_context ci_key, eum_key, leaf_key;
    struct pl_cert *ci;
};

static void lab_init(struct lab *l)
{
    mk_key(&l->ci_key);
    mk_key(&l->eum_key);
    mk_key(&l->leaf_key);
    struct spec ci = {CI_NAME, CI_NAME, &l->ci_key, &l->ci_key, 1, -1, KU_CA, 0, MBEDTLS_MD_SHA256,
                      {{0}}};
    l->ci = mk_cert(&ci);
    cr_assert(l->ci);
}

static void lab_free(struct lab *l)
{
    pl_cert_free(l->ci);
    mbedtls_pk_free(&l->ci_key);
    mbedtls_pk_free(&l->eum_key);
    mbedtls_pk_free(&l->leaf_key);
}

/* nameConstraints { permittedSubtrees { directoryName { O=org, serialNumber=sn } } }
 * (or excludedSubtrees when excluded). */
static size_t nc_der(uint8_t *out, size_t cap, const char *org, const char *sn, bool excluded)
{
    static const uint8_t oid_o[] = {0x55, 0x04, 0x0A}, oid_sn[] = {0x55, 0x04, 0x05};
    struct pl_wr w;
    pl_wr_init_fixed(&w, out, cap);
    size_t m0 = pl_der_begin(&w, PL_TAG_SEQUENCE);
    size_t m1 = pl_der_begin(&w, excluded ? 0xA1u : 0xA0u);
    size_t m2 = pl_der_begin(&w, PL_TAG_SEQUENCE);
    size_t m3 = pl_der_begin(&w, 0xA4u);
    size_t m4 = pl_der_begin(&w, PL_TAG_SEQUENCE);
    size_t s1 = pl_der_begin(&w, PL_TAG_SET);
    size_t a1 = pl_der_begin(&w, PL_TAG_SEQUENCE);
    pl_der_put_tlv(&w, PL_TAG_OID, oid_o, sizeof(oid_o));
    pl_der_put_tlv(&w, PL_TAG_UTF8, org, strlen(org));
    pl_der_end(&w, a1);
    pl_der_end(&w, s1);
    size_t s2 = pl_der_begin(&w, PL_TAG_SET);
    size_t a2 = pl_der_begin(&w, PL_TAG_SEQUENCE);
    pl_der_put_tlv(&w, PL_TAG_OID, oid_sn, sizeof(oid_sn));
    pl_der_put_tlv(&w, 0x13u /* PrintableString */, sn, strlen(sn));
    pl_der_end(&w, a2);
    pl_der_end(&w, s2);
    pl_der_end(&w, m4);
    pl_der_end(&w, m3);
    pl_der_end(&w, m2);
    pl_der_end(&w, m1);
    pl_der_end(&w, m0);
    cr_assert_eq(pl_wr_status(&w), PL_OK);
    return w.len;
}

static struct pl_cert *mk_eum(struct lab *l, const uint8_t *nc, size_t nc_len, int pathlen)
{
    struct spec s = {EUM_NAME, CI_NAME, &l->eum_key, &l->ci_key, 1, pathlen,
                     MBEDTLS_X509_KU_KEY_CERT_SIGN, 2, MBEDTLS_MD_SHA256, {{0}}};
    if (nc) {
        s.extra[0] = (struct ext){MBEDTLS_OID_NAME_CONSTRAINTS,
                                  MBEDTLS_OID_SIZE(MBEDTLS_OID_NAME_CONSTRAINTS), 1, nc, nc_len};
    }
    return mk_cert(&s);
}

static struct pl_cert *mk_euicc(struct lab *l, const char *subject)
{
    struct spec s = {subject, EUM_NAME, &l->leaf_key, &l->eum_key, 0, -1, KU_DS, 1,
                     MBEDTLS_MD_SHA256, {{0}}};
    return mk_cert(&s);
}

#define EID_OK "89040000000000000000000000000001"

Test(x509, eum_name_constraints_sgp22_semantics)
{
    struct lab l;
    uint8_t nc[256];
    lab_init(&l);
    size_t nc_len = nc_der(nc, sizeof(nc), "Lab EUM", "8904", false);
    struct pl_cert *eum = mk_eum(&l, nc, nc_len, 0);
    cr_assert(eum);
    struct pl_cert *ok = mk_euicc(&l, "C=XX,O=Lab EUM,serialNumber=" EID_OK ",CN=eUICC");
    struct pl_cert *bad_ein =
        mk_euicc(&l, "C=XX,O=Lab EUM,serialNumber=89050000000000000000000000000001,CN=eUICC");
    struct pl_cert *bad_org = mk_euicc(&l, "C=XX,O=Other EUM,serialNumber=" EID_OK ",CN=eUICC");
    struct pl_cert *no_org = mk_euicc(&l, "C=XX,serialNumber=" EID_OK ",CN=eUICC");
    struct pl_cert *no_eid = mk_euicc(&l, "C=XX,O=Lab EUM,CN=eUICC");
    cr_assert(ok && bad_ein && bad_org && no_org && no_eid);

    cr_assert_eq(verify1(ok, eum, l.ci, PL_CERT_ROLE_EUICC, T_2025_01_01), PL_OK);
    cr_assert_eq(verify1(bad_ein, eum, l.ci, PL_CERT_ROLE_EUICC, T_2025_01_01), PL_ERR_CERT_USAGE);
    cr_assert_eq(verify1(bad_org, eum, l.ci, PL_CERT_ROLE_EUICC, T_2025_01_01), PL_ERR_CERT_USAGE);
    cr_assert_eq(verify1(no_org, eum, l.ci, PL_CERT_ROLE_EUICC, T_2025_01_01), PL_ERR_CERT_USAGE);
    cr_assert_eq(verify1(no_eid, eum, l.ci, PL_CERT_ROLE_EUICC, T_2025_01_01), PL_ERR_CERT_USAGE);

    /* The same CI key and name without id-rspRole-ci: not a CI for the GSMA roles. */
    struct spec plain = {CI_NAME, CI_NAME, &l.ci_key, &l.ci_key, 1, -1, KU_CA, -1,
                         MBEDTLS_MD_SHA256, {{0}}};
    struct pl_cert *plain_ci = mk_cert(&plain);
    cr_assert(plain_ci);
    cr_assert_eq(verify1(ok, eum, plain_ci, PL_CERT_ROLE_EUICC, T_2025_01_01), PL_ERR_CERT_USAGE);
    pl_cert_free(plain_ci);

    /* excludedSubtrees are not understood: fail closed. */
    nc_len = nc_der(nc, sizeof(nc), "Lab EUM", "8904", true);
    struct pl_cert *eum_x = mk_eum(&l, nc, nc_len, 0);
    cr_assert(eum_x);
    cr_assert_eq(verify1(ok, eum_x, l.ci, PL_CERT_ROLE_EUICC, T_2025_01_01), PL_ERR_CERT_USAGE);
    /* Name constraints outside the EUM of an eUICC path are not understood either. */
    struct spec sub = {"CN=Lab TLS", EUM_NAME, &l.leaf_key, &l.eum_key, 0, -1, KU_DS, -1,
                       MBEDTLS_MD_SHA256, {{0}}};
    struct pl_cert *tls = mk_cert(&sub);
    cr_assert(tls);
    cr_assert_eq(verify1(tls, eum, l.ci, PL_CERT_ROLE_TLS_SERVER, T_2025_01_01), PL_ERR_CERT_USAGE);

    pl_cert_free(tls);
    pl_cert_free(eum_x);
    pl_cert_free(ok);
    pl_cert_free(bad_ein);
    pl_cert_free(bad_org);
    pl_cert_free(no_org);
    pl_cert_free(no_eid);
    pl_cert_free(eum);
    lab_free(&l);
}

Test(x509, certificate_signed_by_a_leaf)
{
    /* CI -> leaf A (end entity) -> leaf B: B's signature is good, but A may not sign. */
    struct lab l;
    lab_init(&l);
    mbedtls_pk_context b_key;
    mk_key(&b_key);
    struct spec a = {"CN=Leaf A,O=Lab", CI_NAME, &l.leaf_key, &l.ci_key, 0, -1, KU_DS, -1,
                     MBEDTLS_MD_SHA256, {{0}}};
    struct spec b = {"CN=Leaf B,O=Lab", "CN=Leaf A,O=Lab", &b_key, &l.leaf_key, 0, -1, KU_DS, -1,
                     MBEDTLS_MD_SHA256, {{0}}};
    struct pl_cert *ca = mk_cert(&a), *cb = mk_cert(&b);
    cr_assert(ca && cb);
    cr_assert_eq(verify1(ca, NULL, l.ci, PL_CERT_ROLE_EIM, T_2025_01_01), PL_OK);
    cr_assert_eq(verify1(cb, ca, l.ci, PL_CERT_ROLE_EIM, T_2025_01_01), PL_ERR_CERT_USAGE);
    /* Even marked as a CA, a key without keyCertSign may not sign certificates. */
    struct spec a2 = {"CN=Leaf A,O=Lab", CI_NAME, &l.leaf_key, &l.ci_key, 1, -1, KU_DS, -1,
                      MBEDTLS_MD_SHA256, {{0}}};
    struct pl_cert *ca2 = mk_cert(&a2);
    cr_assert(ca2);
    cr_assert_eq(verify1(cb, ca2, l.ci, PL_CERT_ROLE_EIM, T_2025_01_01), PL_ERR_CERT_USAGE);
    pl_cert_free(ca2);
    pl_cert_free(ca);
    pl_cert_free(cb);
    mbedtls_pk_free(&b_key);
    lab_free(&l);
}

Test(x509, path_length_constraint)
{
    /* CI -> EUM(pathLen p) -> sub-CA -> leaf: allowed for p >= 1 only. */
    struct lab l;
    lab_init(&l);
    mbedtls_pk_context sub_key;
    mk_key(&sub_key);
    struct spec sub = {"CN=Lab SubCA", EUM_NAME, &sub_key, &l.eum_key, 1, -1,
                       MBEDTLS_X509_KU_KEY_CERT_SIGN, -1, MBEDTLS_MD_SHA256, {{0}}};
    struct spec leaf = {"CN=Lab eIM", "CN=Lab SubCA", &l.leaf_key, &sub_key, 0, -1, KU_DS, -1,
                        MBEDTLS_MD_SHA256, {{0}}};
    struct pl_cert *csub = mk_cert(&sub), *cleaf = mk_cert(&leaf);
    struct pl_cert *eum0 = mk_eum(&l, NULL, 0, 0), *eum1 = mk_eum(&l, NULL, 0, 1);
    cr_assert(csub && cleaf && eum0 && eum1);
    const struct pl_cert *im0[2] = {csub, eum0}, *im1[2] = {csub, eum1};
    cr_assert_eq(pl_cert_verify_chain(cleaf, im0, 2, l.ci, PL_CERT_ROLE_EIM, T_2025_01_01),
                 PL_ERR_CERT_USAGE);
    cr_assert_eq(pl_cert_verify_chain(cleaf, im1, 2, l.ci, PL_CERT_ROLE_EIM, T_2025_01_01), PL_OK);
    /* An EUM must have pathLen 0 (SGP.22). */
    cr_assert_eq(verify1(eum0, NULL, l.ci, PL_CERT_ROLE_EUM, T_2025_01_01), PL_OK);
    cr_assert_eq(verify1(eum1, NULL, l.ci, PL_CERT_ROLE_EUM, T_2025_01_01), PL_ERR_CERT_USAGE);
    pl_cert_free(csub);
    pl_cert_free(cleaf);
    pl_cert_free(eum0);
    pl_cert_free(eum1);
    mbedtls_pk_free(&sub_key);
    lab_free(&l);
}

Test(x509, extensions_and_algorithms)
{
    struct lab l;
    lab_init(&l);
    static const uint8_t private_oid[] = {0x2B, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x7F};
    static const uint8_t null_val[] = {0x05, 0x00};
    static const uint8_t eku_client[] = {0x30, 0x0A, 0x06, 0x08, 0x2B, 0x06, 0x01,
                                         0x05, 0x05, 0x07, 0x03, 0x02};
    static const uint8_t eku_server[] = {0x30, 0x0A, 0x06, 0x08, 0x2B, 0x06, 0x01,
                                         0x05, 0x05, 0x07, 0x03, 0x01};
    struct spec s = {"CN=localhost", CI_NAME, &l.leaf_key, &l.ci_key, 0, -1, KU_DS, -1,
                     MBEDTLS_MD_SHA256, {{0}}};

    /* An unknown critical extension makes the certificate unusable (RFC 5280 §4.2)... */
    s.extra[0] = (struct ext){(const char *)private_oid, sizeof(private_oid), 1, null_val, 2};
    cr_assert_null(mk_cert(&s));
    /* ...a non-critical one is ignored. */
    s.extra[0].critical = 0;
    struct pl_cert *c = mk_cert(&s);
    cr_assert(c);
    cr_assert_eq(verify1(c, NULL, l.ci, PL_CERT_ROLE_TLS_SERVER, T_2025_01_01), PL_OK);
    pl_cert_free(c);

    /* TLS server: extendedKeyUsage, when present, must allow serverAuth. */
    s.extra[0] = (struct ext){MBEDTLS_OID_EXTENDED_KEY_USAGE,
                              MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE), 0, eku_client,
                              sizeof(eku_client)};
    c = mk_cert(&s);
    cr_assert(c);
    cr_assert_eq(verify1(c, NULL, l.ci, PL_CERT_ROLE_TLS_SERVER, T_2025_01_01), PL_ERR_CERT_USAGE);
    pl_cert_free(c);
    s.extra[0].val = eku_server;
    c = mk_cert(&s);
    cr_assert(c);
    cr_assert_eq(verify1(c, NULL, l.ci, PL_CERT_ROLE_TLS_SERVER, T_2025_01_01), PL_OK);
    pl_cert_free(c);

    /* A leaf whose keyUsage also allows keyCertSign is refused. */
    s.extra[0].oid = NULL;
    s.ku = KU_DS | MBEDTLS_X509_KU_KEY_CERT_SIGN;
    c = mk_cert(&s);
    cr_assert(c);
    cr_assert_eq(verify1(c, NULL, l.ci, PL_CERT_ROLE_TLS_SERVER, T_2025_01_01), PL_ERR_CERT_USAGE);
    pl_cert_free(c);

    /* Only ECDSA with SHA-256 is accepted. */
    s.ku = KU_DS;
    s.md = MBEDTLS_MD_SHA384;
    c = mk_cert(&s);
    cr_assert(c);
    cr_assert_eq(verify1(c, NULL, l.ci, PL_CERT_ROLE_TLS_SERVER, T_2025_01_01), PL_ERR_CERT_CHAIN);
    pl_cert_free(c);
    lab_free(&l);
}
