/* Helpers for the SGP.32 codec tests (header-only, Criterion tests only). */
#ifndef PL_TEST_SGP32_H
#define PL_TEST_SGP32_H

#include "pl_test.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/hex.h"
#include "provline/protocol/sgp32_common.h"
#include "provline/protocol/wr.h"
#include "provline/protocol/x509.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SGP32_TEST_WR_MAX (64u * 1024u)

/* A view of a C string literal. */
#define S(lit) pl_sgp32_str(lit)

static inline struct pl_sgp32_buf sgp32_bytes(const uint8_t *p, size_t len)
{
    struct pl_sgp32_buf b = {p, len};
    return b;
}

/* Decodes loose hex into a malloc'd buffer (the test frees it). */
static inline uint8_t *sgp32_hex(const char *hex, size_t *len)
{
    size_t cap = strlen(hex) / 2 + 1;
    uint8_t *b = malloc(cap);
    cr_assert_not_null(b);
    cr_assert_eq(pl_hex_decode_loose(hex, b, cap, len), PL_OK, "bad hex: %s", hex);
    return b;
}

static inline void sgp32_assert_hex(const uint8_t *p, size_t len, const char *hex)
{
    size_t n;
    uint8_t *want = sgp32_hex(hex, &n);
    char got[2 * 4096 + 1];
    if (len <= 4096 && pl_hex_encode(p, len, got, sizeof(got)) != PL_OK)
        got[0] = 0;
    cr_assert(n == len && memcmp(want, p, n) == 0, "encoding mismatch\n got: %s\nwant: %s",
              len <= 4096 ? got : "(long)", hex);
    free(want);
}

/* Reads a test file (PL_TEST_SRCDIR-relative) into a malloc'd buffer. */
static inline uint8_t *sgp32_file(const char *rel, size_t *len)
{
    char path[512];
    uint8_t *b = pl_test_read_file(pl_test_src(path, sizeof(path), rel), len);
    cr_assert_not_null(b, "cannot read %s", path);
    return b;
}

static inline struct pl_eckey *sgp32_key(const char *rel)
{
    size_t len;
    uint8_t *pem = sgp32_file(rel, &len);
    struct pl_eckey *k = NULL;
    cr_assert_eq(pl_eckey_parse(pem, len, &k), PL_OK, "key %s", rel);
    free(pem);
    return k;
}

/* Public key of an X.509 certificate file. */
static inline struct pl_eckey *sgp32_cert_key(const char *rel)
{
    size_t len;
    uint8_t *der = sgp32_file(rel, &len);
    struct pl_cert *c = NULL;
    struct pl_eckey *k = NULL;
    cr_assert_eq(pl_cert_parse(der, len, &c), PL_OK, "cert %s", rel);
    cr_assert_eq(pl_cert_public_key(c, &k), PL_OK);
    pl_cert_free(c);
    free(der);
    return k;
}

#define SGP32_EIM_SK     "tests/data/sgp26/variant-o/SK_S_EIMsign_ECDSA_NIST.pem"
#define SGP32_EIM_CERT   "tests/data/sgp26/variant-o/CERT_S_EIMsign_ECDSA_NIST.der"
#define SGP32_EUICC_SK   "tests/data/sgp26/variant-o/SK_EUICC_SIG_NIST.pem"
#define SGP32_EUICC_CERT "tests/data/sgp26/variant-o/CERT_EUICC_SIG_NIST.der"
#define SGP32_EUM_CERT   "tests/data/sgp26/variant-o/CERT_EUM_SIG_NIST.der"

static inline bool sgp32_buf_is(struct pl_sgp32_buf b, const char *s)
{
    return b.p != NULL && b.len == strlen(s) && memcmp(b.p, s, b.len) == 0;
}

#endif
